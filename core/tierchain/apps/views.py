"""Read-only views of an app's records as node endpoints (``POST /v1/app/<app>.lineage``, the
API's ``Lineage`` call; docs/api.md).

``lineage_endpoint(app, fn, id_bytes)`` makes the endpoint ``<app>.lineage``: its body is
``{"id": hex}`` (exactly ``id_bytes`` bytes); ``fn(chain, id)`` answers the app's JSON view,
or None for an unknown id (``NO_SUCH_RECORD``, 404). A view that finds damaged records
raises ``LookupError`` (answered ``NO_SUCH_RECORD`` too, with the reason).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tierchain.engine.apps import Endpoint, EndpointError

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
View = Callable[[Any, bytes], "dict | None"]


def record_id(body: dict, id_bytes: int) -> bytes:
    """The body's ``id``: even-length hex of exactly ``id_bytes`` bytes, and nothing else."""
    if set(body) != {"id"} or not isinstance(body["id"], str):
        raise EndpointError("BAD_ARGUMENT", 'the body is {"id": hex}')
    text = body["id"]
    if len(text) != 2 * id_bytes or not _HEX.fullmatch(text):
        raise EndpointError("BAD_ARGUMENT", f"an id is {id_bytes} bytes as hex")
    return bytes.fromhex(text)


def lineage_endpoint(app: str, fn: View, id_bytes: int) -> Endpoint:
    def make(chain: Any) -> Callable[[dict], Any]:
        def handler(body: dict) -> Any:
            rid = record_id(body, id_bytes)
            try:
                view = fn(chain, rid)
            except LookupError as exc:
                raise EndpointError("NO_SUCH_RECORD", str(exc), 404) from None
            if view is None:
                raise EndpointError("NO_SUCH_RECORD", f"no {app} record {rid.hex()}", 404)
            return view

        return handler

    return Endpoint(f"{app}.lineage", make)
