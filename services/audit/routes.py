"""The audit service's HTTP interface.

Only TTP services append, each only the event kinds it produces and only
naming an actor it may act for (``ttp.privileges.APPENDS``); only auditors
read (role ``auditor``): entries, proofs, checkpoints and the consent report. Nobody
else, not even a provider about its own records, reads the log directly;
providers hold their receipts instead.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import orjson
from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError

from services.audit.consent_report import build_consent_report
from services.audit.entries import AGB_RE, PERIOD_RE, check_events
from services.audit.sink import AuditLog
from services.audit.store import AuditStore
from ttp.audit_events import EVENT_KINDS, AuditEvent
from ttp.identity import refuse, require_roles, require_service
from ttp.privileges import append_refusal
from ttp.problems import InvalidParam, Problem, pydantic_invalid_params
from ttp.registry import Party, Registry

#: Upper bound of one append call; ingest sends one call per batch of at most 10,000 records.
MAX_EVENTS = 50_000
MAX_PAGE = 10_000
#: The largest leaf index or tree size a query may name: what the log's 64-bit index column holds.
#: Declared on every such parameter (and so in the OpenAPI document), because a larger number used
#: to reach the database driver and fail there (an OverflowError, answered 500) instead of a 400.
MAX_INDEX = 2**63 - 1

router = APIRouter(prefix="/v1/audit", tags=["audit"])
Service = Annotated[Party, Depends(require_service("ingest", "pseudonymise", "aggregate", "report", "portal"))]
Auditor = Annotated[Party, Depends(require_roles("auditor"))]
TEXT = "text/plain; charset=utf-8"


_HASH = "9f2c" * 16
APPEND_EXAMPLE = {
    "events": [
        {
            "kind": "record-accepted",
            "actorOin": "00000099100000000001",
            "subject": {"provider": "98000001", "recordId": "R-2026-0001", "contentHash": _HASH,
                        "contentKeyVersion": 1, "batchId": "2026-H1-01", "period": "2026-H1",
                        "legalBasis": "toestemming", "consentBy": "ouder", "consentOn": "2026-01-15"},
            "idempotencyKey": f"record-accepted:98000001:R-2026-0001:{_HASH}",
        }
    ]
}


class AppendRequest(BaseModel):
    """One batch of events from one service call."""

    events: list[AuditEvent] = Field(min_length=1, max_length=MAX_EVENTS)
    proofs: Literal["all", "last"] = Field(
        default="all",
        description="Inclusion proofs in the receipt: one per event, or only for the last event "
        "(a batch summary entry), which keeps receipts of large batches small",
    )


def _json(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type="application/json")


def _bad(name: str, code: str, reason: str) -> Problem:
    return Problem(400, "The request is not valid; see invalidParams.",
                   invalid_params=[InvalidParam(name=name, code=code, reason=reason)])


def _store(request: Request) -> AuditStore:
    store: AuditStore = request.app.state.store
    return store


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


UNAVAILABLE = Problem(503, "The audit log's database is unavailable; nothing was appended.",
                      headers={"Retry-After": "5"})


@router.post(
    "/entries",
    summary="Append a batch of events (TTP services only)",
    description="Appends the events in order, durably, and answers with a receipt: leaf indexes, "
    "the signed checkpoint and an inclusion proof per event. Events whose idempotencyKey is "
    "already in the log are not appended again; they get their existing leaf. Each service may "
    "append only the kinds of entry it produces, naming as actor itself or a party it acts for "
    "(services/audit/README.md, 'Who may append what'); any other batch is refused whole (403).",
    status_code=201,
    operation_id="appendAuditEntries",
    responses={200: {"description": "Every event was already in the log"},
               201: {"description": "Appended; the receipt"},
               400: {"description": "Invalid events; nothing appended",
                     "content": {"application/problem+json": {}}},
               403: {"description": "Not a TTP service, or an event of a kind this service does not "
                                    "produce or naming an actor it does not act for (logged); nothing "
                                    "appended", "content": {"application/problem+json": {}}},
               503: {"description": "Database unavailable; nothing appended, resend",
                     "content": {"application/problem+json": {}}}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/AppendRequest"}, "example": APPEND_EXAMPLE}}}},
)
async def append_entries(request: Request, party: Service) -> Response:
    # Parsed by pydantic-core straight from bytes: this is on the path of every ingest batch.
    try:
        body = AppendRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise Problem(400, "The request is not valid; see invalidParams.",
                      invalid_params=pydantic_invalid_params(list(exc.errors()))) from exc
    problems = check_events(body.events)
    if problems:
        raise Problem(400, "Some events are not valid; nothing was appended.", invalid_params=problems)
    registry: Registry = request.app.state.registry
    judged: dict[tuple[Any, ...], str | None] = {}  # a batch has one actor: judge each shape once
    for i, event in enumerate(body.events):
        shape = (event.kind, event.actorOin, event.relayedBy, repr(event.subject.get("provider")),
                 repr(event.subject.get("gemeente")))
        if shape not in judged:
            judged[shape] = append_refusal(registry, party, event.kind, event.actorOin, event.subject,
                                           event.relayedBy)
        reason = judged[shape]
        if reason is not None:
            problem = refuse(request, party.oin, f"Event {i}: {reason} Nothing was appended.")
            problem.invalid_params = [InvalidParam(name=f"/events/{i}", code="not-permitted", reason=reason)]
            raise problem
    audit_log: AuditLog = request.app.state.audit_log
    try:
        receipt = await audit_log.append(body.events, party.oin, proofs=body.proofs)
    except SQLAlchemyError as exc:
        raise UNAVAILABLE from exc
    return _json(receipt, 201 if receipt["appended"] else 200)


@router.get(
    "/checkpoint",
    summary="The latest signed checkpoint, or the one at a given tree size",
    description="A C2SP tlog-checkpoint (signed note): origin, tree size, base64 root hash, a "
    "'time' extension line, a blank line and the Ed25519 signature line.",
    response_class=Response,
    operation_id="getAuditCheckpoint",
    responses={200: {"content": {"text/plain": {}}},
               404: {"description": "No checkpoint at that tree size (or the log is still empty)",
                     "content": {"application/problem+json": {}}}},
)
async def get_checkpoint(
    request: Request, _: Auditor, treeSize: Annotated[int | None, Query(ge=0, le=MAX_INDEX)] = None  # noqa: N803
) -> Response:
    note = await to_thread.run_sync(_store(request).checkpoint, treeSize)
    if note is None:
        raise Problem(404, "The log signed no checkpoint at this tree size.")
    return Response(note, media_type=TEXT)


@router.get(
    "/verifier-key",
    summary="The log's public key as a signed-note verifier key",
    description="What an auditor or witness configures to trust this log's checkpoints: "
    "<name>+<hex key id>+<base64(0x01 || Ed25519 public key)> (c2sp.org/signed-note).",
    response_class=Response,
    operation_id="getAuditVerifierKey",
    responses={200: {"content": {"text/plain": {}}}},
)
async def get_verifier_key(request: Request, _: Auditor) -> Response:
    return Response(_store(request).signer.verifier_key() + "\n", media_type=TEXT)


@router.get(
    "/entries",
    summary="Read entries by index range, optionally filtered by provider, kind and period",
    description="Entries in log order, each with its leaf hash and the entry itself (canonical JSON "
    "whose bytes are the Merkle leaf). Page with nextStart.",
    operation_id="listAuditEntries",
)
async def list_entries(
    request: Request,
    _: Auditor,
    start: Annotated[int, Query(ge=0, le=MAX_INDEX, description="First leaf index")] = 0,
    end: Annotated[int | None, Query(ge=0, le=MAX_INDEX, description="Leaf index to stop before")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
    provider: Annotated[str | None, Query(description="AGB code of the provider")] = None,
    kind: Annotated[str | None, Query()] = None,
    period: Annotated[str | None, Query(description="Reporting period, e.g. 2026-H1")] = None,
) -> Response:
    if provider is not None and not AGB_RE.match(provider):
        raise _bad("provider", "invalid-agb", "An AGB code is 8 digits.")
    if kind is not None and kind not in EVENT_KINDS:
        raise _bad("kind", "unknown-kind", "One of: " + ", ".join(EVENT_KINDS))
    if period is not None and not PERIOD_RE.match(period):
        raise _bad("period", "invalid-period", "A period looks like 2026-H1.")
    store = _store(request)
    head = await to_thread.run_sync(store.head)
    stop = head.tree_size if end is None else min(end, head.tree_size)

    def read() -> list[Any]:
        return store.entries(start=start, end=stop, limit=limit, provider=provider, kind=kind, period=period)

    rows = await to_thread.run_sync(read)
    doc = {
        "treeSize": head.tree_size,
        "entries": [
            {"index": e.index, "leafHash": _b64(e.leaf_hash), "entry": orjson.Fragment(e.body)}
            for e in rows
        ],
        "nextStart": rows[-1].index + 1 if len(rows) == limit and rows[-1].index + 1 < stop else None,
    }
    return _json(doc)


@router.get(
    "/proofs/inclusion",
    summary="Inclusion proof of one leaf in the tree of a given size (RFC 9162 2.1.3)",
    description="The audit path from the leaf to the root of the tree of treeSize leaves, with the "
    "signed checkpoint of that size to check it against.",
    operation_id="getAuditInclusionProof",
)
async def get_inclusion_proof(
    request: Request,
    _: Auditor,
    leafIndex: Annotated[int, Query(ge=0, le=MAX_INDEX)],  # noqa: N803
    treeSize: Annotated[int | None, Query(ge=1, le=MAX_INDEX, description="Default: the current size")] = None,  # noqa: N803
) -> Response:
    store = _store(request)
    head = await to_thread.run_sync(store.head)
    size = head.tree_size if treeSize is None else treeSize
    if size > head.tree_size:
        raise _bad("treeSize", "beyond-log", "The log is not that large yet.")
    if leafIndex >= size:
        raise _bad("leafIndex", "beyond-tree", "The leaf index must be below the tree size.")
    leaf, proof = await to_thread.run_sync(store.inclusion_proof, leafIndex, size)
    note = await to_thread.run_sync(store.checkpoint, size)
    return _json({"leafIndex": leafIndex, "treeSize": size, "leafHash": _b64(leaf),
                  "hashes": [_b64(h) for h in proof], "checkpoint": note})


@router.get(
    "/proofs/consistency",
    summary="Consistency proof between two tree sizes (RFC 9162 2.1.4)",
    description="Proves the log at toTreeSize contains the log at fromTreeSize unchanged: no entry "
    "was altered or removed, and the log did not fork.",
    operation_id="getAuditConsistencyProof",
)
async def get_consistency_proof(
    request: Request,
    _: Auditor,
    fromTreeSize: Annotated[int, Query(ge=0, le=MAX_INDEX)],  # noqa: N803
    toTreeSize: Annotated[int | None, Query(ge=0, le=MAX_INDEX, description="Default: the current size")] = None,  # noqa: N803
) -> Response:
    store = _store(request)
    head = await to_thread.run_sync(store.head)
    new = head.tree_size if toTreeSize is None else toTreeSize
    if new > head.tree_size:
        raise _bad("toTreeSize", "beyond-log", "The log is not that large yet.")
    if fromTreeSize > new:
        raise _bad("fromTreeSize", "after-to", "fromTreeSize must not exceed toTreeSize.")
    proof = await to_thread.run_sync(store.consistency_proof, fromTreeSize, new)
    return _json({"fromTreeSize": fromTreeSize, "toTreeSize": new, "hashes": [_b64(h) for h in proof]})


@router.get(
    "/consent-report",
    summary="Per provider and period: records by legal basis and consent type, consent-rule rejections",
    description="Computed from the log alone and tied to the signed checkpoint it was computed at.",
    operation_id="getAuditConsentReport",
)
async def get_consent_report(
    request: Request,
    _: Auditor,
    provider: Annotated[str, Query(description="AGB code of the provider")],
    period: Annotated[str | None, Query(description="Reporting period, e.g. 2026-H1")] = None,
) -> Response:
    if not AGB_RE.match(provider):
        raise _bad("provider", "invalid-agb", "An AGB code is 8 digits.")
    if period is not None and not PERIOD_RE.match(period):
        raise _bad("period", "invalid-period", "A period looks like 2026-H1.")
    report = await to_thread.run_sync(build_consent_report, _store(request), provider, period)
    return _json(report)
