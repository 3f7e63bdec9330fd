"""The messaging service's own settings (``MILEPOST_MESSAGING_*``).

Built once in ``main`` and passed down. Secrets are :class:`SecretStr`; lists are given in
the environment as JSON (``MILEPOST_MESSAGING_RETRY_SCHEDULE_SECONDS='[30, 120, 600]'``).
"""

from __future__ import annotations

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import BATCH_WAIT_MS, BatchWaitMs

CHANNELS = ("email", "webhook", "feishu", "dingtalk", "wecom", "slack", "in_app")
"""Every channel a planned delivery can name."""


class MessagingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MILEPOST_MESSAGING_", extra="ignore")

    # Consumer groups on milepost.triggers (and milepost.events for contacts).
    group_id: str = Field(
        default="milepost-messaging", description="Kafka consumer group of the trigger worker."
    )
    subscriptions_group_id: str = Field(
        default="milepost-messaging-subscriptions",
        description="Kafka consumer group that fans triggers out to subscriptions.",
    )
    max_batch_records: int = Field(default=500, ge=1)
    poll_timeout_ms: int = Field(default=200, ge=10, le=10_000)
    batch_wait_ms: BatchWaitMs = BATCH_WAIT_MS

    # Contacts, playbooks and policies (the planning side).
    contacts_group_id: str = Field(
        default="milepost-messaging-contacts",
        description="Kafka consumer group that learns contacts from milepost.events.",
    )
    catalog_refresh_seconds: float = Field(
        default=2.0, gt=0, description="How soon a published playbook takes effect."
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where Milepost is reached from outside: unsubscribe links start with it.",
    )
    unsubscribe_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key of unsubscribe links; without one a random key per process is "
        "used, and links stop working when it restarts. Set it in production.",
    )
    unsubscribe_valid_days: int = Field(default=90, ge=1, le=3650)
    opt_in_categories: list[str] = Field(
        default_factory=lambda: ["marketing"],
        description="Categories sent only to contacts who opted in (others: unless opted out).",
    )
    budget_per_contact: int = Field(
        default=3, ge=0, description="Messages per contact in the budget window."
    )
    budget_per_account_role: int = Field(
        default=6, ge=0, description="Messages per account and role in the budget window."
    )
    budget_window: str = Field(default="P7D", description="ISO 8601 duration, e.g. P7D.")
    quiet_hours_start: str = Field(
        default="21:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Local time."
    )
    quiet_hours_end: str = Field(
        default="08:00",
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Local time; equal to the start: no quiet hours.",
    )
    default_timezone: str = Field(
        default="UTC", description="For contacts whose timezone is not known (IANA name)."
    )

    # Template limits: every render (a preview, a message's subject or body, a task's
    # title) runs within them; one over a limit fails that delivery or preview, naming it.
    template_time_limit_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="CPU time one render may spend (waiting for a core does not count).",
    )
    template_output_limit_chars: int = Field(
        default=100_000,
        ge=1_000,
        description="Characters one render may write (a macro's text counts too), and the "
        "largest string, list or width it may make.",
    )
    template_integer_limit_bits: int = Field(
        default=256, ge=64, description="Bits of the largest integer arithmetic may make."
    )
    template_range_limit: int = Field(default=10_000, ge=1, description="Items of a range().")
    template_depth_limit: int = Field(
        default=30, ge=1, le=100, description="Macro calls nested in macro calls."
    )

    # Email (SMTP).
    smtp_host: str = Field(default="127.0.0.1", description="SMTP relay host.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = Field(
        default="Milepost <milepost@localhost>", description="The From header of every email."
    )
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the connection with STARTTLS before sending."
    )
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)

    # Webhooks and chat apps.
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Standard Webhooks signing secret (``whsec_`` + base64) for deliveries "
        "on the webhook channel and task pushes; subscriptions have their own. Without one "
        "those deliveries fail (the embedded mode makes one and keeps it in the data folder).",
    )
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    http_max_response_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="How much of a webhook's or chat robot's answer is read; the rest is not.",
    )
    webhook_url: str | None = Field(
        default=None,
        description="Where playbook steps on the webhook channel post when they name no "
        "``url`` of their own; signed with ``webhook_secret``.",
    )
    feishu_webhook_url: str | None = Field(
        default=None, description="Feishu/Lark custom bot URL (a target's ``url`` wins)."
    )
    feishu_secret: SecretStr | None = Field(
        default=None, description="The bot's signature secret, when signature checking is on."
    )
    dingtalk_webhook_url: str | None = Field(
        default=None, description="DingTalk robot URL with its access_token."
    )
    dingtalk_secret: SecretStr | None = Field(
        default=None, description="The robot's SEC... secret: the URL is signed with it."
    )
    wecom_webhook_url: str | None = Field(default=None, description="WeCom group robot URL.")
    slack_webhook_url: str | None = Field(default=None, description="Slack incoming webhook.")
    crm_task_webhook_url: str | None = Field(
        default=None,
        description="Where tasks are pushed (created, escalated, updated), signed with "
        "``webhook_secret``; none: tasks stay in Milepost.",
    )

    # Outbound URL guard.
    outbound_allowlist: list[str] = Field(
        default_factory=list,
        description="Host names outbound URLs may reach (``*.example.com`` for subdomains); "
        "empty: any host that passes the private-range check.",
    )
    allow_loopback_targets: bool = Field(
        default=False,
        description="Let outbound URLs reach loopback addresses (tests, a receiver on the "
        "same machine; on by default in the embedded mode).",
    )
    allowed_target_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Networks outbound URLs may reach although not public, by CIDR "
        '(``["10.20.0.0/16"]`` for an intranet CRM, ``["169.254.169.254/32"]`` only if you '
        "mean it); every other private, link-local, shared or reserved address is refused.",
    )

    # Dispatcher.
    retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [30.0, 120.0, 600.0, 3600.0, 21600.0],
        min_length=0,
        description="Upper bounds of the waits before each retry (full jitter: a random wait "
        "between 0 and the bound); after the last, the delivery is dead-lettered.",
    )
    rate_limits_per_second: dict[str, float] = Field(
        default_factory=lambda: {
            "email": 20.0,
            "webhook": 100.0,
            "feishu": 5.0,
            "dingtalk": 0.3,
            "wecom": 0.3,
            "slack": 1.0,
            "in_app": 1000.0,
        },
        description="Sends per second per channel (token bucket; burst = one second's worth, "
        "at least 1). A channel not named is not limited.",
    )
    dispatch_batch: int = Field(default=100, ge=1, description="Deliveries claimed per step.")
    dispatch_concurrency: int = Field(default=32, ge=1, description="Sends in flight at once.")
    dispatch_lanes: int = Field(
        default=2,
        ge=1,
        le=8,
        description="Steps in flight at once on PostgreSQL: while one claims or records, "
        "another's sends run (all within dispatch_concurrency). The embedded database has one "
        "writer and runs one.",
    )
    dispatch_interval_ms: int = Field(
        default=200, ge=10, le=60_000, description="Wait between steps when nothing was due."
    )
    claim_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A claimed delivery is due again after this long if its process died "
        "mid-send (providers get the same idempotency key).",
    )
    replay_retention_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="How long the triggers subscriptions have seen are kept for replays.",
    )
    task_check_interval_seconds: float = Field(
        default=60.0, gt=0, description="How often overdue tasks are escalated."
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="An admin token for /api/messaging/ (not the feed) covering every "
        "workspace, from a Secret (compared hashed; no default). Without it only tokens from "
        "`milepost admin-token create` open the API, which is closed until one exists.",
    )

    @field_validator("rate_limits_per_second")
    @classmethod
    def known_channels(cls, limits: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(limits) - set(CHANNELS))
        if unknown:
            raise ValueError(f"unknown channels {unknown}; known: {', '.join(CHANNELS)}")
        return limits
