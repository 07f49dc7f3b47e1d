"""The network API's schema: ``proto/tierchain/api/v1/node.proto`` as protobuf classes.

The committed ``.proto`` is the one source: ``protoc`` (grpcio-tools' bundled copy) compiles
it, with its imports, into a serialized ``FileDescriptorSet`` (``node.desc`` beside this
file, rebuilt whenever the .proto is newer; ``python -m tierchain.api.schema`` at setup),
loaded into a private descriptor pool. The gRPC server and client, the HTTP/JSON gateway
and the OpenAPI document (``tierchain.api.openapi``) are all built from these
descriptors, so nothing generated is checked in and the four cannot disagree. A client in
another language compiles the same .proto (docs/api.md).
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool, message_factory

PROTO_ROOT = Path(__file__).with_name("proto")
PROTO = "tierchain/api/v1/node.proto"
PACKAGE = "tierchain.api.v1"
SERVICE = f"{PACKAGE}.Node"
DESCRIPTOR_PATH = Path(__file__).with_name("node.desc")


class SchemaUnavailable(RuntimeError):
    """The API's descriptors could not be built (grpcio-tools missing, or protoc failed)."""


def build(out: Path = DESCRIPTOR_PATH) -> Path:
    """protoc the API's .proto (and its imports) into one descriptor set at ``out``."""
    try:
        from grpc_tools import protoc
    except ImportError:
        raise SchemaUnavailable("grpcio-tools is needed to compile the API schema") from None
    well_known = Path(protoc.__file__).parent / "_proto"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".desc.tmp")
    os.close(fd)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        "--include_imports",
        f"--descriptor_set_out={tmp}",
        PROTO,
    ]
    if protoc.main(args) != 0:
        Path(tmp).unlink(missing_ok=True)
        raise SchemaUnavailable(f"protoc failed on {PROTO}")
    Path(tmp).replace(out)
    return out


def _fresh(path: Path) -> bool:
    return path.exists() and path.stat().st_mtime >= (PROTO_ROOT / PROTO).stat().st_mtime


def descriptor_path() -> Path:
    """The descriptor set, built first if missing or older than the .proto: beside this file,
    or (a read-only install) in a cache directory named by the .proto's digest."""
    if _fresh(DESCRIPTOR_PATH):
        return DESCRIPTOR_PATH
    try:
        return build(DESCRIPTOR_PATH)
    except OSError:
        digest = hashlib.sha256((PROTO_ROOT / PROTO).read_bytes()).hexdigest()[:16]
        cached = Path(tempfile.gettempdir()) / f"tierchain-api-{digest}.desc"
        return cached if cached.exists() else build(cached)


@functools.cache
def pool() -> descriptor_pool.DescriptorPool:
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path().read_bytes())
    p = descriptor_pool.DescriptorPool()
    for f in files.file:
        p.Add(f)
    return p


@functools.cache
def message(name: str) -> type:
    """The class of message ``name`` (``SubmitRequest``, or a full name such as
    ``google.protobuf.Struct``)."""
    full = name if "." in name else f"{PACKAGE}.{name}"
    return message_factory.GetMessageClass(pool().FindMessageTypeByName(full))


@functools.cache
def service() -> descriptor.ServiceDescriptor:
    return pool().FindServiceByName(SERVICE)


def methods() -> dict[str, descriptor.MethodDescriptor]:
    """The service's methods by name, in .proto order."""
    return {m.name: m for m in service().methods}


def main() -> int:
    print(f"API descriptors at {build()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
