"""Provider pages: upload a delivery file to ingest on the party's behalf, and read its receipt.

The file goes to ingest as it was chosen, with its own content type (JSON batch, or the CSV
and XLSX deliveries ingest takes): the portal neither parses nor converts it, so the rules a
delivery meets are exactly ingest's.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from services.portal.pages.relayed import ServiceAnswer, call, error_page, fetch_json
from services.portal.pages.render import render
from services.portal.session import Forbidden, Person, checked_form, signed_in

router = APIRouter()

#: What a browser may call a delivery file; anything else goes to ingest as octet-stream and
#: gets ingest's own 415.
UPLOAD_TYPES = {
    ".json": "application/json",
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
BATCH_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def provider_only(person: Person = Depends(signed_in)) -> Person:
    if person.role != "provider":
        raise Forbidden("Deze pagina is voor jeugdhulpaanbieders.")
    return person


@router.get("/aanbieder", include_in_schema=False)
async def provider_home(request: Request, person: Person = Depends(provider_only)) -> HTMLResponse:
    return render(request, "provider_home.html.j2")


def content_type_of(upload: UploadFile) -> str:
    """The file's media type: by its extension for the formats ingest takes, else what the browser said."""
    name = (upload.filename or "").lower()
    for ext, media in UPLOAD_TYPES.items():
        if name.endswith(ext):
            return media
    return upload.content_type or "application/octet-stream"


@router.post("/aanbieder/aanleveringen", include_in_schema=False)
async def upload(request: Request, person: Person = Depends(provider_only),
                 form: FormData = Depends(checked_form)) -> Response:
    upload = form.get("bestand")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return render(request, "provider_home.html.j2", status=400,
                      upload_error="Kies een bestand om aan te leveren.")
    body = await upload.read()
    try:
        response = await call(request, person, "ingest", "POST", "/batches", content=body,
                              headers={"Content-Type": content_type_of(upload)})
    except ServiceAnswer as answer:
        return answer.page
    if response.status_code not in (200, 201):
        return error_page(request, response)
    return render(request, "receipt.html.j2", receipt=response.json(), file_name=upload.filename)


@router.get("/aanbieder/aanleveringen/{batch_id}", include_in_schema=False)
async def receipt(batch_id: str, request: Request, person: Person = Depends(provider_only)) -> Response:
    if not BATCH_ID.match(batch_id):
        return render(request, "problem.html.j2", status=400, title="Onbekende aanlevering",
                      detail="Een aanleveringsnummer bestaat uit letters, cijfers en . _ : -")
    try:
        doc: dict[str, Any] = await fetch_json(request, person, "ingest", f"/batches/{batch_id}")
    except ServiceAnswer as answer:
        return answer.page
    return render(request, "receipt.html.j2", receipt=doc, file_name=None)


@router.get("/aanbieder/ontvangstbewijs", include_in_schema=False)
async def find_receipt(request: Request, person: Person = Depends(provider_only)) -> Response:
    """The look-up form's target: on to the receipt's own address."""
    batch_id = request.query_params.get("aanlevering", "").strip()
    if not BATCH_ID.match(batch_id):
        return render(request, "problem.html.j2", status=400, title="Onbekende aanlevering",
                      detail="Een aanleveringsnummer bestaat uit letters, cijfers en . _ : -")
    return RedirectResponse(f"/aanbieder/aanleveringen/{batch_id}", status_code=303)
