"""``/api/messaging/workspaces/{workspace}/templates/preview``: render a template with
sample data, as a published playbook's template or as text sent in the request.

A template that does not compile or render answers 422 naming the field and the reason
(a limit it went over included). Rendering runs in a thread, within the template limits.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, status
from fastapi.params import Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.admin_api import Session, WorkspaceId
from services.messaging.contacts.endpoints import ERRORS
from services.messaging.errors import TemplateFailed
from services.messaging.playbooks import service as playbooks
from services.messaging.playbooks.files import Locale, TemplateSpec
from services.messaging.templates.limits import TemplateLimits
from services.messaging.templates.rendering import SAMPLE_CONTEXT, render_message
from shared.definitions.fields import Identifier
from shared.errors import Invalid, NotFound
from shared.http_errors import ErrorOut
from shared.runtime import Resources


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    playbook_id: Identifier | None = Field(
        default=None, description="A published playbook whose template to render."
    )
    template: Identifier | None = Field(default=None, description="The template's name in it.")
    source: TemplateSpec | None = Field(
        default=None, description="Or a template given here: subject and body per locale."
    )
    locale: Locale | None = Field(default=None, description="The contact's locale to try.")
    default_locale: Locale = "en"
    sample: dict[str, Any] | None = Field(
        default=None,
        description="The names the template sees (account, contact, role, trigger, "
        "unsubscribe_url); by default a sample of each.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> PreviewIn:
        if (self.source is None) == (self.playbook_id is None or self.template is None):
            raise ValueError("give either playbook_id and template, or source")
        return self


class PreviewOut(BaseModel):
    locale: str = Field(description="The variant rendered.")
    subject: str
    body: str


def templates_router(
    resources: Resources, *, dependencies: list[Depends], limits: TemplateLimits
) -> APIRouter:
    router = APIRouter(
        prefix="/api/messaging/workspaces/{workspace}/templates",
        tags=["messaging: templates"],
        dependencies=dependencies,
        responses=ERRORS,
    )

    @router.post(
        "/preview",
        summary="Render a template with sample data, in a locale",
        responses={
            status.HTTP_422_UNPROCESSABLE_CONTENT: {
                "model": ErrorOut,
                "description": "A template that fails, with the reason",
            }
        },
    )
    async def preview(
        workspace: str, body: PreviewIn, session: Session, workspace_id: WorkspaceId
    ) -> PreviewOut:
        spec, default_locale, field = body.source, body.default_locale, "source"
        if spec is None:
            assert body.playbook_id is not None
            assert body.template is not None
            detail = await playbooks.show(session, workspace_id, body.playbook_id)
            spec = detail.playbook.templates.get(body.template)
            default_locale, field = detail.playbook.default_locale, "template"
            if spec is None:
                raise NotFound(
                    f"{body.playbook_id} has no template {body.template!r}", field="template"
                )
        try:
            rendered = await asyncio.to_thread(
                render_message,
                spec.subject,
                spec.body,
                SAMPLE_CONTEXT if body.sample is None else body.sample,
                locale=body.locale,
                default_locale=default_locale,
                limits=limits,
            )
        except TemplateFailed as exc:  # at fault: the template sent, or the one named
            raise Invalid(str(exc), field=field) from exc
        return PreviewOut(locale=rendered.locale, subject=rendered.subject, body=rendered.body)

    return router
