"""``POST /v1/pseudonyms``: identifiers in, keyed pseudonyms out, nothing stored or logged."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.pseudonymise.keyring import Keyring
from services.pseudonymise.models import PseudonymRequest, PseudonymResponse
from ttp.identity import require_roles
from ttp.registry import Party

router = APIRouter(prefix="/v1", tags=["pseudonyms"])


@router.post(
    "/pseudonyms",
    summary="Pseudonymise a batch of person identifiers, and key their records' content (HMAC-SHA256, versioned key)",
    operation_id="createPseudonyms",
    response_model=PseudonymResponse,
    responses={
        400: {"description": "Invalid request", "content": {"application/problem+json": {}}},
        403: {"description": "Caller is not a TTP service", "content": {"application/problem+json": {}}},
    },
)
async def create_pseudonyms(
    body: PseudonymRequest, request: Request, _party: Party = Depends(require_roles("service"))
) -> Response:
    ring: Keyring = request.app.state.keyring
    ring.refresh()
    values = [ring.pseudonymise(i.kind, i.value) for i in body.identifiers]
    digests = [ring.content_digests(i.content) if i.content is not None else None for i in body.identifiers]
    return Response(
        orjson.dumps({"keyVersions": ring.versions, "pseudonyms": values, "contentDigests": digests}),
        media_type="application/json",
    )
