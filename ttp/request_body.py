"""Reading a JSON request body after the access check, never before it.

A body declared as a FastAPI parameter is read and validated before the
route's dependencies have settled, so a caller without access got a 400 that
told it about the body (and no refusal entry) instead of the 403. Routes
therefore declare their body in ``openapi_extra`` (``json_body_spec``) and
parse it here, inside the route, once ``Require`` has admitted the caller.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from ttp.problems import Problem, pydantic_invalid_params

M = TypeVar("M", bound=BaseModel)


async def parse_body(request: Request, model: type[M], title: str = "The request body is not valid.") -> M:
    """The body as ``model``, validated by pydantic-core from the bytes; 400 with invalidParams if not."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise Problem(400, title, invalid_params=pydantic_invalid_params(list(exc.errors()))) from exc


def json_body_spec(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` that documents ``model`` as the required JSON body (a named component)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}
