"""Routes ingest uses to deliver minimised trajectories and withdrawals (the ingest service only)."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError

from services.aggregate import store
from services.aggregate.commit_log import log_commits
from services.aggregate.wire import (
    BatchOutcome,
    CommitRequest,
    PrepareRequest,
    WithdrawalOutcome,
    WithdrawalRequest,
)
from ttp.identity import require_service
from ttp.problems import Problem, pydantic_invalid_params
from ttp.registry import Party

M = TypeVar("M", bound=BaseModel)

router = APIRouter(prefix="/v1", tags=["delivery"])
service_only = require_service("ingest")

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request", "content": {"application/problem+json": {}}},
    403: {"description": "Caller is not the ingest service (logged)", "content": {"application/problem+json": {}}},
    409: {"description": "Batch id reused with other content, or store changed meanwhile",
          "content": {"application/problem+json": {}}},
}


async def _parse(request: Request, model: type[M], title: str) -> M:
    """The request body as ``model``, parsed and validated by pydantic-core straight from bytes.

    Done by hand rather than as a FastAPI body parameter, which would build
    the Python objects first and validate them after: these bodies hold
    thousands of rows.
    """
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise Problem(400, title, invalid_params=pydantic_invalid_params(list(exc.errors()))) from exc


@router.post(
    "/trajectories",
    summary="Classify a batch of trajectories by their keys (phase one of two)",
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
    """Classify each record as new, duplicate, correction or refused; nothing of a record is stored yet."""
    body = await _parse(request, PrepareRequest, "The trajectory batch is not valid.")
    try:
        return await run_in_threadpool(store.prepare, request.app.state.engine, body, dt.datetime.now(dt.UTC))
    except store.BatchConflict as exc:
        raise Problem(409, str(exc)) from exc


@router.post(
    "/trajectory-batches/{providerAgb}/{batchId}/commit",
    summary="Store a prepared batch's minimised rows (phase two), after its audit entries are durable",
    operation_id="commitTrajectories",
    responses={**_ERRORS, 404: {"description": "No such prepared batch", "content": {"application/problem+json": {}}}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CommitRequest"}}},
        }
    },
)
async def commit_trajectories(
    providerAgb: str, batchId: str, request: Request, _party: Party = Depends(service_only)  # noqa: N803
) -> BatchOutcome:
    """Check the rows against the prepared keys and store the new ones and the corrections in one transaction.

    Extra fields are refused by the wire model, so a BSN, birth date or full
    postcode sent by mistake is never stored.
    """
    body = await _parse(request, CommitRequest, "The trajectory rows are not valid.")
    try:
        outcome = await run_in_threadpool(
            store.commit, request.app.state.engine, providerAgb, batchId, body, dt.datetime.now(dt.UTC)
        )
    except store.BatchNotFound as exc:
        raise Problem(404, "No batch with this id was prepared for this provider.") from exc
    except store.BatchConflict as exc:
        raise Problem(409, str(exc)) from exc
    await log_commits(request.app, providerAgb, batchId)  # or later, from the outbox
    return outcome


@router.post(
    "/consent-withdrawals",
    summary="Prepare a withdrawal: which trajectories it removes (phase one of two; nothing is deleted)",
    operation_id="prepareWithdrawal",
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WithdrawalRequest"}}},
        }
    },
)
async def prepare_withdrawal(request: Request, _party: Party = Depends(service_only)) -> WithdrawalOutcome:
    """The rows a withdrawal will remove, recorded so the resend of the same request gets the same ones."""
    body = await _parse(request, WithdrawalRequest, "The withdrawal is not valid.")
    return await run_in_threadpool(store.prepare_withdrawal, request.app.state.engine, body,
                                   dt.datetime.now(dt.UTC))


@router.post(
    "/consent-withdrawals/{providerAgb}/{withdrawalId}/commit",
    summary="Delete a prepared withdrawal's trajectories (phase two), after its audit entry is durable",
    operation_id="commitWithdrawal",
    responses={**_ERRORS,
               404: {"description": "No such prepared withdrawal", "content": {"application/problem+json": {}}}},
)
async def commit_withdrawal(
    providerAgb: str, withdrawalId: str, request: Request, _party: Party = Depends(service_only)  # noqa: N803
) -> WithdrawalOutcome:
    """Delete exactly the rows prepared (and named in the log); a committed withdrawal is answered as it was."""
    try:
        return await run_in_threadpool(store.commit_withdrawal, request.app.state.engine, providerAgb,
                                       withdrawalId, dt.datetime.now(dt.UTC))
    except store.WithdrawalNotFound as exc:
        raise Problem(404, "No withdrawal with this id was prepared for this provider.") from exc
