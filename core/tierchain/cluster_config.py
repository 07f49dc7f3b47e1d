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
```

Relative paths are relative to the file's directory. The same file is what
``tierchain shard serve --cluster FILE --index I`` reads on a shard's host, so
every process of a cluster derives its shard's config from one base config.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from tierchain import limits
from tierchain.config import ChainConfig, ConfigError

__all__ = ["ClusterSpec", "parse_endpoint"]


def parse_endpoint(text: str) -> tuple[str, int]:
    """("HOST", PORT) of "HOST:PORT"; ``ConfigError`` otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 1 << 16:
        raise ConfigError(f"not a HOST:PORT endpoint: {text!r}")
    return host, int(port)


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
    coordinator_key_file: Path | None = None  # run tierchain.coordinator in the scheduler

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
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        here = path.parent
        try:
            c = doc["cluster"]
            chain_config = here / str(c.get("chain_config", "chain.toml"))
            if "key_file" in c:
                key_file = here / str(c["key_file"])
            else:
                key_file = chain_config.parent / ChainConfig.load(chain_config).key_file
            shards = tuple(None if s == "local" else str(s) for s in c["shards"])
            spec = cls(
                path=path,
                chain_config=chain_config,
                key_file=key_file,
                root=here / str(c.get("root", "shards")),
                control=str(c.get("control", "127.0.0.1:7600")),
                shards=shards,
                queue_max=int(c.get("queue_max", 50_000)),
                start_timeout_s=float(c.get("start_timeout_s", 60.0)),
                heartbeat_s=float(c.get("heartbeat_s", 1.0)),
                heartbeat_timeout_s=float(c.get("heartbeat_timeout_s", 10.0)),
                coordinator_key_file=here / str(c["coordinator_key_file"])
                if "coordinator_key_file" in c
                else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{path}: bad [cluster] section: {exc!r}") from exc
        checks = [
            (1 <= spec.n_shards <= limits.shards_max, f"shards: 1..{limits.shards_max} entries"),
            (1 <= spec.queue_max <= 10_000_000, "queue_max in 1..1e7"),
            (0 < spec.start_timeout_s <= 3600, "start_timeout_s in (0, 3600]"),
            (
                0 < spec.heartbeat_s < spec.heartbeat_timeout_s <= 600,
                "need 0 < heartbeat_s < heartbeat_timeout_s",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"{path}: {message}")
        parse_endpoint(spec.control)
        for endpoint in spec.shards:
            if endpoint is not None:
                parse_endpoint(endpoint)
        return spec
