"""Routes ingest uses to deliver minimised trajectories and withdrawals (service role only)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from services.aggregate import store
from services.aggregate.wire import (
    BatchOutcome,
    PrepareRequest,
    WithdrawalOutcome,
    WithdrawalRequest,
)
from ttp.identity import require_roles
from ttp.problems import Problem, pydantic_invalid_params
from ttp.registry import Party

router = APIRouter(prefix="/v1", tags=["delivery"])
service_only = require_roles("service")

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request", "content": {"application/problem+json": {}}},
    403: {"description": "Caller is not a TTP service", "content": {"application/problem+json": {}}},
    409: {"description": "Batch id reused with other content, or store changed meanwhile",
          "content": {"application/problem+json": {}}},
}


@router.post(
    "/trajectories",
    summary="Stage a batch of minimised trajectories (phase one of two)",
    operation_id="prepareTrajectories",
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PrepareRequest"}}},
        }
    },
)
async def prepare_trajectories(request: Request, _party: Party = Depends(service_only)) -> BatchOutcome:
    """Classify each record as new, duplicate, correction or refused; nothing is visible until commit.

    The body is parsed and validated by pydantic-core straight from bytes
    (the hot path of every delivery), and those bytes are what is staged.
    """
    raw = await request.body()
    try:
        body = PrepareRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise Problem(400, "The trajectory batch is not valid.",
                      invalid_params=pydantic_invalid_params(list(exc.errors()))) from exc
    try:
        return await run_in_threadpool(store.prepare, request.app.state.engine, body, dt.datetime.now(dt.UTC), raw)
    except store.BatchConflict as exc:
        raise Problem(409, str(exc)) from exc


@router.post(
    "/trajectory-batches/{providerAgb}/{batchId}/commit",
    summary="Apply a staged batch (phase two), after its audit entries are durable",
    operation_id="commitTrajectories",
    responses={**_ERRORS, 404: {"description": "No such staged batch", "content": {"application/problem+json": {}}}},
)
async def commit_trajectories(
    providerAgb: str, batchId: str, request: Request, _party: Party = Depends(service_only)  # noqa: N803
) -> BatchOutcome:
    try:
        return await run_in_threadpool(
            store.commit, request.app.state.engine, providerAgb, batchId, dt.datetime.now(dt.UTC)
        )
    except store.BatchNotFound as exc:
        raise Problem(404, "No batch with this id was staged for this provider.") from exc
    except store.BatchConflict as exc:
        raise Problem(409, str(exc)) from exc


@router.post(
    "/consent-withdrawals",
    summary="Remove a person's trajectories at one provider after consent was withdrawn",
    operation_id="withdrawConsent",
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WithdrawalRequest"}}},
        }
    },
)
async def withdraw_consent(request: Request, _party: Party = Depends(service_only)) -> WithdrawalOutcome:
    try:
        body = WithdrawalRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise Problem(400, "The withdrawal is not valid.",
                      invalid_params=pydantic_invalid_params(list(exc.errors()))) from exc
    return await run_in_threadpool(store.withdraw, request.app.state.engine, body)
