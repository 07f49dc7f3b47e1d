"""The OpenAPI 3.1 document of the HTTP/JSON API, built from the .proto's descriptors.

One path per method (``POST /api/v1/<Method>``), its request and response bodies as JSON
Schemas of the messages under proto3's JSON mapping as the gateway speaks it (field names
as in the .proto; bytes: base64 strings; 64-bit integers: strings, or numbers on input),
the ``tierchain-*`` auth headers, and the error body. Served at ``GET /openapi.json``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from tierchain.api import auth, schema

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "uint32", "minimum": 0},
    FieldDescriptor.TYPE_INT64: {"type": ["string", "integer"], "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": ["string", "integer"], "format": "uint64"},
}
_WELL_KNOWN = {"google.protobuf.Struct": {"type": "object"}, "google.protobuf.Value": {}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _field(f: FieldDescriptor, todo: list[Descriptor]) -> dict[str, Any]:
    if f.type == FieldDescriptor.TYPE_MESSAGE:
        full = f.message_type.full_name
        one = _WELL_KNOWN.get(full)
        if one is None:
            todo.append(f.message_type)
            one = _ref(f.message_type.name)
    elif f.type == FieldDescriptor.TYPE_ENUM:
        one = {"type": "string", "enum": [v.name for v in f.enum_type.values]}
    else:
        one = dict(_SCALARS[f.type])
    return {"type": "array", "items": one} if f.is_repeated else one


def _schemas(roots: list[Descriptor]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    todo = list(roots)
    while todo:
        d = todo.pop()
        if d.name in out or d.full_name in _WELL_KNOWN:
            continue
        out[d.name] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {f.name: _field(f, todo) for f in d.fields},
        }
    return dict(sorted(out.items()))


def document() -> dict[str, Any]:
    methods = schema.methods()
    roots = [m.input_type for m in methods.values()] + [m.output_type for m in methods.values()]
    schemas = _schemas(roots)
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    }
    auth_params = [
        {"name": h, "in": "header", "required": False, "schema": {"type": "string"}}
        for h in (auth.KEY, auth.TIME, auth.SIGNATURE)
    ]
    paths: dict[str, Any] = {}
    for name, m in methods.items():
        out = m.output_type
        body = {"schema": _WELL_KNOWN.get(out.full_name) or _ref(out.name)}
        content = {"application/x-ndjson": body} if m.server_streaming else {"application/json": body}
        in_schema = _WELL_KNOWN.get(m.input_type.full_name) or _ref(m.input_type.name)
        paths[f"/api/v1/{name}"] = {
            "post": {
                "operationId": name,
                "summary": f"{schema.SERVICE}.{name}"
                + (" (stream: one JSON message a line)" if m.server_streaming else ""),
                "parameters": auth_params,
                "requestBody": {"required": True, "content": {"application/json": {"schema": in_schema}}},
                "responses": {
                    "200": {"description": "the answer", "content": content},
                    "default": {
                        "description": "a refusal",
                        "content": {"application/json": {"schema": _ref("Error")}},
                    },
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "TierChain node API", "version": "v1", "description": "docs/api.md"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
