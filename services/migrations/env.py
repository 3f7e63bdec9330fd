"""Alembic environment: runs on the connection handed in by :mod:`services.migrations`."""

from __future__ import annotations

from alembic import context

from services.ingest.deduplication import models as _deduplication_models  # noqa: F401
from services.messaging.contacts import models as _messaging_contact_models  # noqa: F401
from services.messaging.deliveries import models as _messaging_delivery_models  # noqa: F401
from services.messaging.feed import models as _messaging_feed_models  # noqa: F401
from services.messaging.playbooks import models as _messaging_playbook_models  # noqa: F401
from services.messaging.processing import models as _messaging_plan_models  # noqa: F401
from services.messaging.subscriptions import models as _messaging_subscription_models  # noqa: F401
from services.messaging.tasks import models as _messaging_task_models  # noqa: F401
from services.node_engine.accounts import models as _account_models  # noqa: F401
from services.node_engine.paths import models as _path_models  # noqa: F401
from services.node_engine.processing import models as _processing_models  # noqa: F401
from services.node_engine.timers import models as _timer_models  # noqa: F401
from services.scoring.accounts import models as _scoring_account_models  # noqa: F401
from services.scoring.catalog import models as _scoring_catalog_models  # noqa: F401
from services.scoring.processing import models as _scoring_processing_models  # noqa: F401
from shared.attribution import models as _attribution_models  # noqa: F401
from shared.consuming import models as _consuming_models  # noqa: F401
from shared.db.model_base import Base
from shared.tenancy import models as _workspace_models  # noqa: F401

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through services.migrations (milepost db upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
