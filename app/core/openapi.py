"""Additions to the app's generated OpenAPI document that no route's signature can express."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI


def add_component_schemas(app: FastAPI, schemas: Mapping[str, dict[str, Any]]) -> None:
    """List ``schemas`` under ``components/schemas``: the ones responses name by ``$ref`` (problem details,
    OperationOutcome) rather than through a route's model, which FastAPI would not list."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
