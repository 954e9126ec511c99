"""Auditor pages: the log's latest checkpoint (verified here against the configured log key),
entries filtered by provider, kind and period, and an inclusion proof of one entry verified
against that signed checkpoint.

The log key is a trust anchor the operator configures (``<pki>/audit-log.pub`` in
development), not one fetched from the log it is meant to check.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.portal.pages.figures import role
from services.portal.pages.relayed import ServiceAnswer, call, error_page, fetch_json
from services.portal.pages.render import render
from services.portal.session import Person
from ttp.audit_events import EVENT_KINDS
from ttp.checkpoint import CheckpointError, load_public_key, verify_checkpoint
from ttp.merkle import ProofError, verify_inclusion
from ttp.periods import PERIOD_RE

router = APIRouter()
AGB = re.compile(r"^\d{8}$")
PAGE = 50


async def _checkpoint(request: Request, person: Person) -> tuple[str, dict[str, Any]]:
    """The latest checkpoint note and what its verification against the log key says."""
    response = await call(request, person, "audit", "GET", "/audit/checkpoint")
    if response.status_code != 200:
        raise ServiceAnswer(error_page(request, response))
    return response.text, verify_note(request, response.text)


def verify_note(request: Request, note: str) -> dict[str, Any]:
    key = load_public_key(request.app.state.config.settings.pki / "audit-log.pub")
    try:
        cp = verify_checkpoint(note, key)
    except CheckpointError as exc:
        return {"ok": False, "reason": str(exc)}
    return {"ok": True, "treeSize": cp.tree_size, "root": base64.b64encode(cp.root_hash).decode(),
            "time": cp.time, "rootHash": cp.root_hash}


@router.get("/auditor", include_in_schema=False)
async def auditor_home(request: Request, person: Person = Depends(role("auditor"))) -> Response:
    q = request.query_params
    filters: dict[str, str] = {}
    if AGB.match(q.get("aanbieder", "")):
        filters["provider"] = q["aanbieder"]
    if q.get("soort") in EVENT_KINDS:
        filters["kind"] = str(q["soort"])
    if PERIOD_RE.match(q.get("periode", "")):
        filters["period"] = q["periode"]
    start = int(q["vanaf"]) if q.get("vanaf", "").isdigit() else 0
    try:
        note, verified = await _checkpoint(request, person)
        entries = await fetch_json(request, person, "audit", "/audit/entries",
                                   params={**filters, "start": start, "limit": PAGE})
    except ServiceAnswer as answer:
        return answer.page
    return render(request, "auditor_home.html.j2", note=note, verified=verified, entries=entries,
                  filters=filters, kinds=EVENT_KINDS, start=start)


@router.get("/auditor/bewijs", include_in_schema=False)
async def inclusion(request: Request, person: Person = Depends(role("auditor"))) -> Response:
    """Fetch the inclusion proof of one entry and check it against the signed checkpoint it names."""
    index = request.query_params.get("index", "")
    if not index.isdigit():
        return render(request, "problem.html.j2", status=400, title="Ongeldig volgnummer",
                      detail="Geef het volgnummer van een logregel (0 of hoger).")
    try:
        proof = await fetch_json(request, person, "audit", "/audit/proofs/inclusion", params={"leafIndex": index})
    except ServiceAnswer as answer:
        return answer.page
    verified = verify_note(request, proof["checkpoint"])
    outcome: dict[str, Any] = {"ok": False, "reason": verified.get("reason", "")}
    if verified["ok"]:
        try:
            verify_inclusion(base64.b64decode(proof["leafHash"]), proof["leafIndex"], proof["treeSize"],
                             [base64.b64decode(h) for h in proof["hashes"]], verified["rootHash"])
        except ProofError as exc:
            outcome = {"ok": False, "reason": str(exc)}
        else:
            outcome = {"ok": True}
    return render(request, "proof.html.j2", proof=proof, verified=verified, outcome=outcome)
