"""The OpenAPI document of the scoring service, one request schema per served model's spec."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from riskops import __version__
from riskops.serving.served import ServedModel

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_REASON = {
    "type": "object",
    "properties": {
        "feature": {"type": "string", "description": "the raw input the reason is given under"},
        "contribution": {"type": "number", "description": "push on the log-odds"},
        "text": {"type": "string"},
    },
}
_DECISION = {
    "type": "object",
    "required": ["decision_id", "model", "version", "score", "band"],
    "properties": {
        "decision_id": {"type": "string"},
        "model": {"type": "string"},
        "version": {"type": "string"},
        "score": {"type": "number", "minimum": 0, "maximum": 1,
                  "description": "probability of the bad outcome"},
        "band": {"type": "string", "enum": ["approve", "refer", "decline"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "reason_codes": {"type": "array", "items": _REASON},
        "unseen_categories": {"type": "array", "items": {"type": "string"}},
    },
}  # fmt: skip


def _responses(ok: dict[str, Any]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "200": {"description": "scored", "content": {"application/json": {"schema": ok}}},
        **{
            code: {"description": why, **error}
            for code, why in (
                ("400", "malformed JSON or protocol"),
                ("401", "missing or unknown API key"),
                ("403", "the key's role may not score"),
                ("404", "unknown model"),
                ("413", "body or batch too large"),
                ("422", "fields refused by the model's schema, one problem per field"),
                ("503", "no champion loaded"),
            )
        },
    }


def openapi_document(models: Sequence[ServedModel]) -> dict[str, Any]:
    """OpenAPI 3.1: paths of every served model with its record schema."""
    schemas: dict[str, Any] = {"Error": _ERROR, "Decision": _DECISION}
    paths: dict[str, Any] = {}
    for served in models:
        ref = f"Record-{served.name}"
        schemas[ref] = served.schema.json_schema()
        record = {"$ref": f"#/components/schemas/{ref}"}
        batch = {
            "type": "object",
            "required": ["records"],
            "additionalProperties": False,
            "properties": {"records": {"type": "array", "items": record}},
        }
        decision = {"$ref": "#/components/schemas/Decision"}
        paths[f"/v1/models/{served.name}/score"] = {
            "post": {
                "summary": f"Decide on {served.name} (champion v{served.version})",
                "description": served.spec.intended_use,
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "explain",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "boolean"},
                        "description": "reason codes for approvals too",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"oneOf": [record, batch]}}},
                },
                "responses": _responses(
                    {
                        "oneOf": [
                            decision,
                            {
                                "type": "object",
                                "properties": {"decisions": {"type": "array", "items": decision}},
                            },
                        ]
                    }
                ),
            }
        }
        paths[f"/v1/models/{served.name}/invocations"] = {
            "post": {
                "summary": f"MLflow scoring protocol for {served.name}",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {
                        "dataframe_records": {"type": "array", "items": record},
                        "dataframe_split": {"type": "object"},
                        "inputs": {},
                    },
                }}}},
                "responses": _responses({"type": "object", "properties": {
                    "predictions": {"type": "array", "items": {"type": "number"}}}}),
            }
        }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "riskops scoring service", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
