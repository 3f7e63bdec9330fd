"""``/v1/{track,identify,group,page,screen,alias,batch}``: Segment's HTTP Tracking API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import TypeAdapter, ValidationError

from services.ingest.errors import Problem, RequestRejected, problems_from_validation
from services.ingest.request_body import read_json_body
from services.ingest.schemas import ErrorResponse, IngestResponse
from services.ingest.service import IngestService
from services.ingest.tracking.schemas import CALL_MODELS, BatchRequest, Timestamp
from services.ingest.tracking.service import CallDefaults, normalise_call
from shared.openapi import body_of

JSON = frozenset({"application/json", "text/plain", "application/x-www-form-urlencoded"})
"""``text/plain`` too: some SDKs (analytics.js beacons) send JSON with it; and, as
RudderStack's server does, a form-urlencoded body is read as JSON: RudderStack's Node SDK
posts its gzipped JSON with that type (a body that is not JSON is 400 ``invalid_json``)."""

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Invalid JSON, a missing field or a broken rule; names the field and the limit",
        401: "Missing, unknown or revoked write key",
        413: "Body over the size limit (also after gzip)",
        415: "Wrong Content-Type or Content-Encoding",
        503: "The bus did not acknowledge; retry after Retry-After seconds",
    }.items()
}

_timestamp = TypeAdapter(Timestamp)


def tracking_router(service: IngestService) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["tracking"])

    for call_type, model in CALL_MODELS.items():
        router.add_api_route(
            f"/{call_type}",
            _single_call_handler(service, call_type),
            methods=["POST"],
            response_model=IngestResponse,
            responses=ERROR_RESPONSES,
            summary=f"Send one {call_type} call",
            name=f"segment_{call_type}",
            openapi_extra=body_of(model),
        )

    @router.post(
        "/batch",
        response_model=IngestResponse,
        responses=ERROR_RESPONSES,
        summary="Send up to 2,500 calls at once",
        description=(
            "Batch-level `context` and `integrations` are merged into every call (the call's "
            "own keys win). Invalid calls are listed in `rejected`; the others are published."
        ),
        openapi_extra=body_of(BatchRequest),
    )
    async def batch(request: Request) -> IngestResponse:
        body = await read_json_body(request, service.body_limits, JSON)
        workspace_id = await service.authenticate(request, body)
        items, defaults = _batch_parts(body, service)
        outcome = await service.ingest(
            workspace_id,
            items,
            lambda item, _: normalise_call(
                item, workspace_id=workspace_id, call_type=None, defaults=defaults
            ),
            field="batch",
        )
        return IngestResponse.from_outcome(outcome)

    return router


def _single_call_handler(service: IngestService, call_type: str) -> Any:
    async def handle(request: Request) -> IngestResponse:
        body = await read_json_body(request, service.body_limits, JSON)
        workspace_id = await service.authenticate(request, body)
        defaults = CallDefaults(
            received_at=service.clock.now(),
            context={},
            integrations={},
            sent_at=None,
            max_event_bytes=service.settings.max_event_bytes,
        )
        outcome = await service.ingest(
            workspace_id,
            [body],
            lambda item, _: normalise_call(
                item, workspace_id=workspace_id, call_type=call_type, defaults=defaults
            ),
            field="",
        )
        return IngestResponse.from_outcome(outcome)

    return handle


def _batch_parts(body: Any, service: IngestService) -> tuple[list[Any], CallDefaults]:
    if not isinstance(body, dict):
        raise RequestRejected(400, [Problem("body", "not_an_object", "expected a JSON object")])
    items = body.get("batch")
    if not isinstance(items, list):
        raise RequestRejected(400, [Problem("batch", "missing", "batch must be an array")])
    limit = service.settings.max_batch_events
    if not items or len(items) > limit:
        raise RequestRejected(
            400,
            [
                Problem(
                    "batch",
                    "batch_size",
                    f"batch has {len(items)} calls; send 1 to {limit}",
                    limit,
                )
            ],
        )
    problems: list[Problem] = []
    shared_maps: dict[str, dict[str, Any]] = {}
    for name in ("context", "integrations"):
        value = body.get(name, {})
        if not isinstance(value, dict):
            problems.append(Problem(name, "not_an_object", f"{name} must be an object"))
        else:
            shared_maps[name] = value
    sent_at = None
    if body.get("sentAt") is not None:
        try:
            sent_at = _timestamp.validate_python(body["sentAt"])
        except ValidationError as exc:
            problems.extend(problems_from_validation(exc, prefix="sentAt"))
    if problems:
        raise RequestRejected(400, problems)
    return items, CallDefaults(
        received_at=service.clock.now(),
        context=shared_maps["context"],
        integrations=shared_maps["integrations"],
        sent_at=sent_at,
        max_event_bytes=service.settings.max_event_bytes,
    )
