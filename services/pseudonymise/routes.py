"""``POST /v1/pseudonyms``: identifiers in, keyed pseudonyms out, nothing stored or logged."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.pseudonymise.keyring import Keyring
from services.pseudonymise.models import PseudonymRequest, PseudonymResponse
from ttp.identity import require_service
from ttp.registry import Party
from ttp.request_body import json_body_spec, parse_body

router = APIRouter(prefix="/v1", tags=["pseudonyms"])


@router.post(
    "/pseudonyms",
    summary="Pseudonymise a batch of person identifiers, and key their records' content (HMAC-SHA256, versioned key)",
    operation_id="createPseudonyms",
    response_model=PseudonymResponse,
    responses={
        400: {"description": "Invalid request", "content": {"application/problem+json": {}}},
        403: {"description": "Caller is not the ingest service (logged)",
              "content": {"application/problem+json": {}}},
    },
    openapi_extra=json_body_spec(PseudonymRequest),
)
async def create_pseudonyms(request: Request, _party: Party = Depends(require_service("ingest"))) -> Response:
    """Only ingest asks: to anyone else this would be a BSN-to-pseudonym oracle."""
    body = await parse_body(request, PseudonymRequest)
    ring: Keyring = request.app.state.keyring
    ring.refresh()
    values = [ring.pseudonymise(i.kind, i.value) for i in body.identifiers]
    digests = [ring.content_digests(i.content) if i.content is not None else None for i in body.identifiers]
    return Response(
        orjson.dumps({"keyVersions": ring.versions, "pseudonyms": values, "contentDigests": digests}),
        media_type="application/json",
    )
