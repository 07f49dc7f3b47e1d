"""The ABCI 2.0 messages of the pinned CometBFT, as protobuf classes.

Built from ``abci.desc`` (``tierchain.replication.cometbft`` writes it at setup from the
pinned module's own .proto files) into a private descriptor pool, so nothing generated
is checked in and nothing clashes with another protobuf user in the process.
``Request`` / ``Response`` are the socket protocol's envelopes; every other message is
reachable by its proto name (``abci_pb.message("tendermint.abci.ExecTxResult")``) or as
an attribute (``abci_pb.ExecTxResult``).
"""

from __future__ import annotations

import functools

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from tierchain.replication.cometbft import DESCRIPTOR_PATH, CometBFTUnavailable

PACKAGE = "tendermint.abci"


@functools.cache
def _pool() -> descriptor_pool.DescriptorPool:
    try:
        data = DESCRIPTOR_PATH.read_bytes()
    except FileNotFoundError:
        raise CometBFTUnavailable(f"{DESCRIPTOR_PATH.name} is missing: run `make setup`") from None
    files = descriptor_pb2.FileDescriptorSet.FromString(data)
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    return pool


@functools.cache
def message(full_name: str) -> type:
    """The message class of ``full_name`` (``tendermint.abci.Request``, ``tendermint.types.Block``...)."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(full_name))


def __getattr__(name: str) -> type:
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        cls = message(f"{PACKAGE}.{name}")
    except KeyError:
        raise AttributeError(name) from None
    globals()[name] = cls  # later lookups are plain module attributes, not calls to this hook
    return cls


@functools.cache
def enum_value(full_name: str, value: str) -> int:
    """The number of ``value`` in the enum ``full_name`` (``tendermint.abci.CheckTxType``, ``RECHECK``)."""
    return _pool().FindEnumTypeByName(full_name).values_by_name[value].number
