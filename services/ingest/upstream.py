"""Calls from ingest to pseudonymise and aggregate over mTLS, with failures mapped to 503.

Any transport error, timeout or 5xx downstream means the batch is not
acknowledged: the provider gets 503 with Retry-After and resends; the
two-phase delivery and idempotency keys make the resend exact.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson

from ttp.logging_setup import request_id_var
from ttp.problems import Problem

log = logging.getLogger("ttp.ingest.upstream")
RETRY_AFTER = "5"


class Unavailable(Problem):
    """A downstream service failed; the batch was not acknowledged."""

    def __init__(self, service: str) -> None:
        super().__init__(
            503,
            f"The {service} step is unavailable; nothing of this batch was acknowledged. "
            "Resend the same batch later: it will be counted exactly once.",
            headers={"Retry-After": RETRY_AFTER},
        )


async def post_json(client: httpx.AsyncClient, service: str, path: str, payload: Any) -> Any:
    """POST orjson-encoded ``payload``; return the decoded answer or raise a Problem."""
    try:
        resp = await client.post(
            path, content=orjson.dumps(payload),
            headers={"content-type": "application/json", "x-request-id": request_id_var.get()},
        )
    except httpx.HTTPError as exc:
        log.warning("upstream unreachable", extra={"upstream": service, "error_type": type(exc).__name__})
        raise Unavailable(service) from exc
    if resp.status_code >= 500 or resp.status_code in (404, 408, 429):
        log.warning("upstream failed", extra={"upstream": service, "status": resp.status_code})
        raise Unavailable(service)
    if resp.status_code == 409:
        detail = resp.json().get("detail", "Conflict") if resp.content else "Conflict"
        raise Problem(409, str(detail))
    if resp.status_code >= 400:
        # A 4xx from a sibling service is our bug, not the provider's: do not blame the caller.
        log.error("upstream rejected request", extra={"upstream": service, "status": resp.status_code})
        raise Unavailable(service)
    return orjson.loads(resp.content)
