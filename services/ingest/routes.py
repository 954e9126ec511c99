"""Ingest routes: the only door for providers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from services.ingest.delivery_files import FileDelivery, read_delivery
from services.ingest.identifier_screen import refuse_personal_identifier
from services.ingest.models import EXAMPLE_RECORD, ID_PATTERN, BatchEnvelope, Receipt
from services.ingest.pipeline import Upstreams, process_batch
from services.ingest.receipts import delivered_by_another, load_receipt, save_receipt
from services.ingest.redelivery import check_replace_period
from services.ingest.upstream import post_json
from services.ingest.withdrawal import ConsentWithdrawal, WithdrawalReceipt, person_selection, withdraw
from ttp.delivery_layout import CSV_MEDIA_TYPE, FILE_MEDIA_TYPES, XLSX_MEDIA_TYPE, csv_lines
from ttp.identity import refuse, require_roles
from ttp.problems import PROBLEM_JSON, InvalidParam, Problem, pydantic_invalid_params
from ttp.registry import Party

router = APIRouter(prefix="/v1", tags=["batches"])
provider_only = require_roles("provider")

PROBLEM = {"content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed envelope or body; nothing of it was processed", **PROBLEM},
    403: {"description": "Caller is not a registered provider", **PROBLEM},
    409: {"description": "batchId reused with different records, or replacePeriod names a closed period",
          **PROBLEM},
    413: {"description": "Body larger than the limit", **PROBLEM},
    415: {"description": "Body is not application/json (or, for a batch, text/csv or XLSX)", **PROBLEM},
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


_CSV_BODY = {"schema": {"type": "string"}, "example": "".join(csv_lines([EXAMPLE_RECORD]))}
_XLSX_BODY = {"schema": {"type": "string", "format": "binary"},
              "example": "(an XLSX workbook: the headings of the CSV layout in row 1 of the first sheet; "
              "docs/samples/levering.xlsx)"}


def _media_type(request: Request) -> tuple[str, str | None]:
    """(media type, charset parameter) of the request body."""
    media, *params = request.headers.get("content-type", "").split(";")
    charset = next((p.split("=", 1)[1].strip().strip('"') for p in params if p.strip().lower().startswith("charset=")),
                   None)
    return media.strip().lower(), charset


async def _file_batch(request: Request, media: str, charset: str | None, batch_id: str | None,
                      party: Party) -> tuple[str, FileDelivery]:
    """A CSV/XLSX body: its batchId comes with the query, its records from the rows of the file."""
    if batch_id is None:
        raise Problem(400, "A CSV or XLSX delivery names its batch in the query: ?batchId=...",
                      invalid_params=[InvalidParam(name="batchId", code="required",
                                                   reason="batchId is required for a file delivery.")])
    body = await request.body()
    delivery = await run_in_threadpool(read_delivery, body, media, charset, party.agb or "")
    return batch_id, delivery


@router.post(
    "/batches",
    summary="Deliver a batch of ended trajectories with their outcome measurements",
    description="The body is a JSON envelope, or a CSV or XLSX file with one row per trajectory and the "
    "Dutch headings of docs/delivery.md (then batchId is a query parameter). With replacePeriod the batch "
    "is a period re-delivery: it replaces what you delivered for that period, and your records of the "
    "period it leaves out are withdrawn and logged.",
    operation_id="postBatch",
    response_model=Receipt,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchEnvelope"}},
                        CSV_MEDIA_TYPE: _CSV_BODY, XLSX_MEDIA_TYPE: _XLSX_BODY},
        }
    },
)
async def post_batch(
    request: Request,
    party: Party = Depends(provider_only),
    batchId: str | None = Query(  # noqa: N803 - NL API query keys are camelCase
        None, pattern=ID_PATTERN, description="The batch id of a CSV or XLSX delivery (JSON: in the body)"
    ),
    replacePeriod: str | None = Query(  # noqa: N803
        None, description="Period re-delivery, e.g. 2026-H1: only the current and the previous period"
    ),
) -> Receipt:
    """Validate the envelope (400 if malformed), then each record on its own; answers a receipt."""
    with request.app.state.inflight:
        today = dt.date.today()
        replace = check_replace_period(replacePeriod, today)
        media, charset = _media_type(request)
        delivery: FileDelivery | None = None
        if media in FILE_MEDIA_TYPES:
            # A file is read into the envelope a JSON delivery would be: one envelope check for both.
            batch_id, delivery = await _file_batch(request, media, charset, batchId, party)
            body: Any = {"batchId": batch_id, "records": delivery.records}
        else:
            body = await _json_body(request)
        try:
            envelope = BatchEnvelope.model_validate(body)
        except ValidationError as exc:
            raise Problem(
                400, "The batch envelope is not valid; no record was processed.",
                invalid_params=pydantic_invalid_params(list(exc.errors())),
            ) from exc
        refuse_personal_identifier("batchId", envelope.batchId)
        if delivery is None and batchId is not None and batchId != envelope.batchId:
            raise Problem(400, "The batchId of the query and of the body differ.",
                          invalid_params=[InvalidParam(name="batchId", code="batch-id-mismatch",
                                                       reason="Leave batchId out of the query for JSON.")])
        batch_id, records = envelope.batchId, envelope.records
        up: Upstreams = request.app.state.upstreams
        receipt = await process_batch(up, party, batch_id, records, today, replace_period=replace)
        if delivery is not None:
            delivery.locate(receipt)
        await run_in_threadpool(
            save_receipt, request.app.state.engine, party.agb or "", batch_id,
            receipt.model_dump(mode="json"),
        )
        return receipt


@router.get(
    "/batches/{batchId}",
    summary="The receipt of a batch, again",
    operation_id="getBatchReceipt",
    response_model=Receipt,
    description="The path names no provider: it always means a batch *you* delivered. A batchId "
    "that only another provider used answers exactly as one nobody used (404), deliberately, so "
    "that no provider learns another's batch ids; the attempt is logged as a refusal all the same.",
    responses={403: ERRORS[403], 404: {"description": "No batch with this id from you (a cross-party "
                                                      "attempt is logged)", **PROBLEM}},
)
async def get_batch(batchId: str, request: Request, party: Party = Depends(provider_only)) -> Receipt:  # noqa: N803
    engine = request.app.state.engine
    receipt = await run_in_threadpool(load_receipt, engine, party.agb or "", batchId)
    if receipt is None:
        missing = Problem(404, "You delivered no batch with this batchId.")
        if await run_in_threadpool(delivered_by_another, engine, party.agb or "", batchId):
            raise refuse(request, party.oin, "A provider asked for the receipt of another provider's batch.",
                         answer=missing)
        raise missing
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
    refuse_personal_identifier("trajectoryId", req.trajectoryId, req.birthDate)
    up: Upstreams = request.app.state.upstreams
    kind, value = req.identifier()
    answer = await post_json(up.pseudonymise, "pseudonymise", "/pseudonyms",
                             {"identifiers": [{"kind": kind, "value": value}]})
    pseudonyms = [{"keyVersion": v, "value": p} for v, p in zip(answer["keyVersions"], answer["pseudonyms"][0],
                                                               strict=True)]
    return await withdraw(up, party, person_selection(pseudonyms, req.trajectoryId), req.withdrawnOn,
                          facts={"trajectoryId": req.trajectoryId})
