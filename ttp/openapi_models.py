"""Put pydantic models into an OpenAPI document's components by name.

Routes that read their body as raw bytes (for speed) still document it: the
model's schema, and the schemas it refers to, become named components.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

REF = "#/components/schemas/{model}"


def add_model_schemas(components: dict[str, Any], *models: type[BaseModel]) -> None:
    """Add each model (and its nested models) under its class name, keeping existing entries."""
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        for name, sub in schema.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components.setdefault(model.__name__, schema)


def document_models(app: Any, *models: type[BaseModel]) -> None:
    """Make ``app.openapi()`` include ``models`` as named component schemas."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return dict(app.openapi_schema)
        schema: dict[str, Any] = original()
        add_model_schemas(schema.setdefault("components", {}).setdefault("schemas", {}), *models)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
