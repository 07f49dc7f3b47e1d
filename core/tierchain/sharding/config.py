"""A cluster described by a TOML file (docs/operations.md, "Run a cluster").

```toml
[cluster]
chain_config = "chain.toml"     # the cluster's base chain config (shard i: chain id + i)
key_file = "node.key"           # sealed proposer key; default: chain config's [node] key_file
root = "shards"                 # local shards live in <root>/shard-<i>
control = "127.0.0.1:7600"      # control endpoint of `tierchain cluster start` (status, stop)
shards = ["local", "10.0.0.2:7601"]   # per shard: "local" or HOST:PORT of `tierchain shard serve`
queue_max = 50000               # per shard: txs sent, not yet settled
start_timeout_s = 60
heartbeat_s = 1.0
heartbeat_timeout_s = 10.0
coordinator_key_file = "coord.key"  # optional: run the cross-shard coordinator with this
                                    # sealed key (genesis gives it the "coordinator" role)
api_listen = "127.0.0.1:7610"   # optional: the network API over HTTP/JSON (docs/api.md)
grpc_listen = "127.0.0.1:7611"  # optional: the network API over gRPC
tls_cert_file = "api.pem"       # optional: both API listeners over TLS (PEM chain and key),
tls_key_file = "api.key"
tls_client_ca_file = "ca.pem"   # ... and mutual TLS (client certificates signed by this CA)
```

Relative paths are relative to the file's directory. The same file is what
``tierchain shard serve --cluster FILE --index I`` reads on a shard's host, so
every process of a cluster derives its shard's config from one base config.
That includes the apps: there is no ``apps`` key here, the base config's
``[chain] apps`` is the one place a cluster's apps are named.

Its keys are declared in ``CLUSTER_FIELDS`` (the schema of ``tierchain.config``):
a section or key not declared is refused naming the nearest declared one, and
every error names the file, the field, what it expects and what it got.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from tierchain import limits
from tierchain.config import ChainConfig, ConfigError, Field, read_table, show, unknown_section

__all__ = ["CLUSTER_FIELDS", "ClusterSpec", "parse_endpoint"]

CLUSTER_FIELDS = (
    Field("cluster.chain_config", "chain_config", str),
    Field("cluster.key_file", "key_file", str),
    Field("cluster.root", "root", str),
    Field("cluster.control", "control", str),  # HOST:PORT
    Field("cluster.queue_max", "queue_max", int, 1, 10_000_000),
    Field("cluster.start_timeout_s", "start_timeout_s", float, 0, 3600, lo_open=True),
    Field("cluster.heartbeat_s", "heartbeat_s", float, 0, 600, lo_open=True),  # and < heartbeat_timeout_s
    Field("cluster.heartbeat_timeout_s", "heartbeat_timeout_s", float, 0, 600, lo_open=True),
    Field("cluster.coordinator_key_file", "coordinator_key_file", str),
    Field("cluster.api_listen", "api_listen", str),  # HOST:PORT
    Field("cluster.grpc_listen", "grpc_listen", str),  # HOST:PORT
    Field("cluster.tls_cert_file", "tls_cert_file", str),
    Field("cluster.tls_key_file", "tls_key_file", str),
    Field("cluster.tls_client_ca_file", "tls_client_ca_file", str),
)
# Defaults of the keys that are not plain ClusterSpec fields (paths are relative to the file).
PATH_DEFAULTS = {"chain_config": "chain.toml", "root": "shards", "control": "127.0.0.1:7600"}
# and cluster.shards (required): 1..shards_max entries, each "local" or HOST:PORT
SHARDS_EXPECTED = f'a list of 1..{limits.shards_max} entries, each "local" or HOST:PORT'


def parse_endpoint(text: str, name: str | None = None) -> tuple[str, int]:
    """("HOST", PORT) of "HOST:PORT"; ``ConfigError`` otherwise (naming the field ``name``)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 1 << 16:
        if name:
            raise ConfigError(f"{name}: expected HOST:PORT (port 0..65535), got {show(text)}")
        raise ConfigError(f"not a HOST:PORT endpoint: {text!r}")
    return host, int(port)


def _shards(value: Any) -> tuple[str | None, ...]:
    """``cluster.shards`` checked: None for "local", else the endpoint."""
    if value is None:
        raise ConfigError(f"cluster.shards: missing; expected {SHARDS_EXPECTED}")
    if not isinstance(value, list) or not 1 <= len(value) <= limits.shards_max:
        raise ConfigError(f"cluster.shards: expected {SHARDS_EXPECTED}, got {show(value)}")
    for i, entry in enumerate(value):
        if not isinstance(entry, str):
            raise ConfigError(f'cluster.shards[{i}]: expected "local" or HOST:PORT, got {show(entry)}')
        if entry != "local":
            parse_endpoint(entry, f"cluster.shards[{i}]")
    return tuple(None if s == "local" else s for s in value)


def _read(doc: dict[str, Any]) -> dict[str, Any]:
    """The checked ``[cluster]`` settings of a parsed cluster file, by attribute name."""
    for name, value in doc.items():
        if name != "cluster":
            raise unknown_section(name, value, ["cluster"], CLUSTER_FIELDS)
    if "cluster" not in doc:
        raise ConfigError("missing section [cluster]")
    c = read_table(doc["cluster"], "cluster", CLUSTER_FIELDS, nested=("shards",))
    c["shards"] = _shards(doc["cluster"].get("shards"))
    period = c.get("heartbeat_s", ClusterSpec.heartbeat_s)
    timeout = c.get("heartbeat_timeout_s", ClusterSpec.heartbeat_timeout_s)
    if period >= timeout:
        raise ConfigError(
            f"cluster.heartbeat_s: expected less than cluster.heartbeat_timeout_s ({timeout}), got {period}"
        )
    parse_endpoint(c.get("control", PATH_DEFAULTS["control"]), "cluster.control")
    for name in ("api_listen", "grpc_listen"):
        if name in c:
            parse_endpoint(c[name], f"cluster.{name}")
    if ("tls_cert_file" in c) != ("tls_key_file" in c) or (
        "tls_client_ca_file" in c and "tls_cert_file" not in c
    ):
        raise ConfigError(
            "cluster.tls_cert_file and cluster.tls_key_file go together (and tls_client_ca_file needs them)"
        )
    return c


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    path: Path
    chain_config: Path
    key_file: Path
    root: Path
    control: str
    shards: tuple[str | None, ...]  # None: a local shard process; else HOST:PORT
    queue_max: int = 50_000
    start_timeout_s: float = 60.0
    heartbeat_s: float = 1.0
    heartbeat_timeout_s: float = 10.0
    coordinator_key_file: Path | None = None  # run tierchain.apps.coordinator in the scheduler
    api_listen: str | None = None  # serve the network API over HTTP/JSON here (docs/api.md)
    grpc_listen: str | None = None  # ... and over gRPC here
    tls_cert_file: Path | None = None  # both API listeners over TLS
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None  # ... mutual TLS

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    def base(self) -> ChainConfig:
        return ChainConfig.load(self.chain_config)

    def shard_dir(self, index: int) -> Path:
        return self.root / f"shard-{index}"

    def cluster_kwargs(self) -> dict[str, Any]:
        return {
            "queue_max": self.queue_max,
            "start_timeout": self.start_timeout_s,
            "endpoints": list(self.shards),
            "heartbeat_s": self.heartbeat_s,
            "heartbeat_timeout_s": self.heartbeat_timeout_s,
        }

    @classmethod
    def load(cls, path: str | Path) -> ClusterSpec:
        """The cluster described by the file at ``path``; ``ConfigError`` naming the file and field."""
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
        except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        try:
            c = _read(doc)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        here = path.parent
        c = PATH_DEFAULTS | c
        chain_config = here / c.pop("chain_config")
        if "key_file" in c:
            key_file = here / c.pop("key_file")
        else:
            key_file = chain_config.parent / ChainConfig.load(chain_config).key_file
        for name in ("coordinator_key_file", "tls_cert_file", "tls_key_file", "tls_client_ca_file"):
            if name in c:
                c[name] = here / c[name]
        return cls(
            path=path,
            chain_config=chain_config,
            key_file=key_file,
            root=here / c.pop("root"),
            control=c.pop("control"),
            **c,
        )
