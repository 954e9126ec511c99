"""Ingest routes: the only door for providers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from services.ingest.models import BatchEnvelope, Receipt
from services.ingest.pipeline import Upstreams, process_batch
from services.ingest.receipts import load_receipt, save_receipt
from services.ingest.upstream import post_json
from services.ingest.withdrawal import ConsentWithdrawal, WithdrawalReceipt, person_selection, withdraw
from ttp.identity import require_roles
from ttp.problems import PROBLEM_JSON, Problem, pydantic_invalid_params
from ttp.registry import Party

router = APIRouter(prefix="/v1", tags=["batches"])
provider_only = require_roles("provider")

PROBLEM = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed envelope or body; nothing of it was processed", **PROBLEM},
    403: {"description": "Caller is not a registered provider", **PROBLEM},
    409: {"description": "batchId reused with different records", **PROBLEM},
    413: {"description": "Body larger than the limit", **PROBLEM},
    415: {"description": "Body is not application/json", **PROBLEM},
    429: {"description": "Too many batches in flight; retry after Retry-After", **PROBLEM},
    503: {"description": "A downstream step failed; resend the same batch after Retry-After", **PROBLEM},
}


def _check_json(request: Request) -> None:
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() not in ("application/json", ""):
        raise Problem(415, "Send the body as application/json.")


async def _json_body(request: Request) -> Any:
    _check_json(request)
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"The body is not valid JSON (at byte {exc.pos}).") from exc


class _Inflight:
    """Counts batches being processed, for load shedding."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def __enter__(self) -> None:
        if self.count >= self.limit:
            raise Problem(
                503, "Ingest is at capacity; resend this batch after Retry-After.",
                headers={"Retry-After": "2"},
            )
        self.count += 1

    def __exit__(self, *_: object) -> None:
        self.count -= 1


@router.post(
    "/batches",
    summary="Deliver a batch of ended trajectories with their outcome measurements",
    operation_id="postBatch",
    response_model=Receipt,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchEnvelope"}}},
        }
    },
)
async def post_batch(request: Request, party: Party = Depends(provider_only)) -> Receipt:
    """Validate the envelope (400 if malformed), then each record on its own; answers a receipt."""
    with request.app.state.inflight:
        body = await _json_body(request)
        try:
            envelope = BatchEnvelope.model_validate(body)
        except ValidationError as exc:
            raise Problem(
                400, "The batch envelope is not valid; no record was processed.",
                invalid_params=pydantic_invalid_params(list(exc.errors())),
            ) from exc
        up: Upstreams = request.app.state.upstreams
        receipt = await process_batch(up, party, envelope.batchId, envelope.records, dt.date.today())
        await run_in_threadpool(
            save_receipt, request.app.state.engine, party.agb or "", envelope.batchId,
            receipt.model_dump(mode="json"),
        )
        return receipt


@router.get(
    "/batches/{batchId}",
    summary="The receipt of a batch, again",
    operation_id="getBatchReceipt",
    response_model=Receipt,
    responses={403: ERRORS[403], 404: {"description": "No batch with this id from you", **PROBLEM}},
)
async def get_batch(batchId: str, request: Request, party: Party = Depends(provider_only)) -> Receipt:  # noqa: N803
    receipt = await run_in_threadpool(load_receipt, request.app.state.engine, party.agb or "", batchId)
    if receipt is None:
        raise Problem(404, "You delivered no batch with this batchId.")
    return Receipt.model_validate(receipt)


@router.post(
    "/consent-withdrawals",
    summary="Withdraw consent: remove a client's trajectories delivered by you",
    operation_id="postConsentWithdrawal",
    response_model=WithdrawalReceipt,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ConsentWithdrawal"}}},
        }
    },
    responses={k: v for k, v in ERRORS.items() if k in (400, 403, 413, 415, 503)},
)
async def post_withdrawal(request: Request, party: Party = Depends(provider_only)) -> WithdrawalReceipt:
    _check_json(request)
    try:
        req = ConsentWithdrawal.model_validate_json(await request.body())
    except ValidationError as exc:
        raise Problem(
            400, "The withdrawal is not valid.", invalid_params=pydantic_invalid_params(list(exc.errors()))
        ) from exc
    up: Upstreams = request.app.state.upstreams
    kind, value = req.identifier()
    answer = await post_json(up.pseudonymise, "pseudonymise", "/pseudonyms",
                             {"identifiers": [{"kind": kind, "value": value}]})
    pseudonyms = [{"keyVersion": v, "value": p} for v, p in zip(answer["keyVersions"], answer["pseudonyms"][0],
                                                               strict=True)]
    return await withdraw(up, party, person_selection(pseudonyms, req.trajectoryId), req.withdrawnOn,
                          facts={"trajectoryId": req.trajectoryId})
