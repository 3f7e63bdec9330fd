"""``POST /v1/crm/events``: CRM facts as CloudEvents 1.0 (structured, batch and binary
modes)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.ingest.crm.service import BINARY_PREFIX, binary_cloud_event, normalise_cloud_event
from services.ingest.errors import Problem, RequestRejected
from services.ingest.request_body import read_json_body
from services.ingest.schemas import IngestResponse
from services.ingest.service import IngestService
from services.ingest.tracking.endpoints import ERROR_RESPONSES

SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
BINARY = "application/json"
"""Binary mode's body: the event's data, its attributes in ``ce-*`` headers."""


def crm_router(service: IngestService) -> APIRouter:
    router = APIRouter(prefix="/v1/crm", tags=["crm"])

    @router.post(
        "/events",
        response_model=IngestResponse,
        responses=ERROR_RESPONSES,
        summary="Send CRM facts as CloudEvents",
        description=(
            f"`{SINGLE}` carries one CloudEvent, `{BATCH}` an array of them; in binary mode "
            f"(a `{BINARY_PREFIX}specversion` header) the `{BINARY}` body is one event's data "
            f"and its attributes are `{BINARY_PREFIX}*` headers. The CloudEvent "
            "`type` picks the data model (account, contact with roles, deal stage, contract, "
            "subscription, invoice, ticket); `data.account_id` names the account."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    SINGLE: {"schema": {"$ref": "#/components/schemas/CloudEvent"}},
                    BATCH: {
                        "schema": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/CloudEvent"},
                        }
                    },
                    BINARY: {"schema": {"type": "object", "description": "The event's data."}},
                },
            }
        },
    )
    async def crm_events(request: Request) -> IngestResponse:
        items, is_batch = await _cloud_events(request, service)
        workspace_id = await service.authenticate(request, None)
        received_at = service.clock.now()
        outcome = await service.ingest(
            workspace_id,
            items,
            lambda item, _: normalise_cloud_event(
                item,
                workspace_id=workspace_id,
                received_at=received_at,
                max_event_bytes=service.settings.max_event_bytes,
            ),
            field="" if not is_batch else "events",
        )
        return IngestResponse.from_outcome(outcome)

    return router


async def _cloud_events(request: Request, service: IngestService) -> tuple[list[Any], bool]:
    """The request's CloudEvents in structured form, and whether it was a batch."""
    if f"{BINARY_PREFIX}specversion" in request.headers:
        data = await read_json_body(request, service.body_limits, frozenset({BINARY}))
        return [binary_cloud_event(request.headers, data)], False
    body = await read_json_body(request, service.body_limits, frozenset({SINGLE, BATCH}))
    is_batch = request.headers.get("content-type", "").lower().startswith(BATCH)
    if is_batch and not isinstance(body, list):
        raise RequestRejected(400, [Problem("body", "not_an_array", f"{BATCH} is an array")])
    items = body if is_batch else [body]
    limit = service.settings.max_batch_events
    if not items or len(items) > limit:
        raise RequestRejected(
            400, [Problem("body", "batch_size", f"send 1 to {limit} CloudEvents", limit)]
        )
    return items, is_batch
