"""The pinned CometBFT: building its binary and the ABCI message descriptors from its .proto files.

``python -m tierchain.replication.cometbft`` (run by ``make setup``) does, for
``COMETBFT_VERSION``:

* ``go install github.com/cometbft/cometbft/cmd/cometbft@<version>`` into the Python
  environment's ``bin`` (beside ``tierchain``), through the Go module proxy;
* ``protoc`` (grpcio-tools' bundled copy) over the ``tendermint/abci/types.proto`` of that
  same module version, to ``abci.desc`` beside this file: a serialized
  ``FileDescriptorSet`` with its imports, which ``tierchain.replication.abci_pb`` loads at
  run time. No generated or copied CometBFT source lives in this repository; both come
  from the module proxy at setup, so the binary and the messages always match.

Why v0.38 (docs/replication.md, "Which CometBFT"): it is the maintained line (v0.38.26,
2026-08), ABCI 2.0 with PrepareProposal / ProcessProposal / FinalizeBlock; v1.0.x has had no
release since v1.0.1 (2025-02).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

COMETBFT_MODULE = "github.com/cometbft/cometbft"
COMETBFT_VERSION = "v0.38.26"
GOGOPROTO_MODULE = "github.com/cosmos/gogoproto"
ABCI_PROTO = "tendermint/abci/types.proto"
DESCRIPTOR_PATH = Path(__file__).with_name("abci.desc")
GO_ENV = "TIERCHAIN_GO"  # the go command to use, if it is neither on PATH nor in /usr/local/go
_GO_DEFAULT = Path("/usr/local/go/bin/go")  # where the official Go distribution installs


class CometBFTUnavailable(RuntimeError):
    """The cometbft binary, or the ABCI descriptors, are missing: run ``make setup``."""


def binary() -> Path:
    """The pinned ``cometbft`` binary in this Python environment's ``bin``."""
    path = Path(sysconfig.get_path("scripts")) / "cometbft"
    if path.exists():
        return path
    found = shutil.which("cometbft")
    if found is None:
        raise CometBFTUnavailable(f"cometbft {COMETBFT_VERSION} is not installed here: run `make setup`")
    # Another CometBFT speaks another ABCI: the messages here are the pinned version's.
    if (version := installed_version(Path(found))) != COMETBFT_VERSION.lstrip("v"):
        raise CometBFTUnavailable(f"{found} is cometbft {version}, not {COMETBFT_VERSION}: run `make setup`")
    return Path(found)


def go_command() -> str:
    if env := os.environ.get(GO_ENV):
        return env
    if found := shutil.which("go"):
        return found
    if _GO_DEFAULT.exists():
        return str(_GO_DEFAULT)
    raise CometBFTUnavailable(f"no Go toolchain: put `go` on PATH or set {GO_ENV}")


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")  # the machine's Go: never fetch another toolchain
    return env


def _module_dir(go: str, module: str, version: str) -> Path:
    out = subprocess.run(
        [go, "mod", "download", "-json", f"{module}@{version}"],
        check=True,
        capture_output=True,
        text=True,
        env=_go_env(),
    )
    return Path(json.loads(out.stdout)["Dir"])


def _required_version(go_mod: Path, module: str) -> str:
    for line in go_mod.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in (module, "require") and module in parts:
            return parts[parts.index(module) + 1]
    raise CometBFTUnavailable(f"{go_mod} does not require {module}")


def installed_version(path: Path) -> str | None:
    try:
        out = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return out.stdout.strip() or None


def install_binary() -> Path:
    target = Path(sysconfig.get_path("scripts")) / "cometbft"
    if installed_version(target) == COMETBFT_VERSION.lstrip("v"):
        return target
    env = _go_env() | {"GOBIN": str(target.parent)}
    subprocess.run(
        [go_command(), "install", f"{COMETBFT_MODULE}/cmd/cometbft@{COMETBFT_VERSION}"], check=True, env=env
    )
    return target


def build_descriptors(out: Path = DESCRIPTOR_PATH) -> Path:
    """protoc the pinned ABCI types (and their imports) into one descriptor set."""
    from grpc_tools import protoc  # build-time only (the dev extra)

    go = go_command()
    comet = _module_dir(go, COMETBFT_MODULE, COMETBFT_VERSION)
    gogo = _module_dir(go, GOGOPROTO_MODULE, _required_version(comet / "go.mod", GOGOPROTO_MODULE))
    well_known = Path(protoc.__file__).parent / "_proto"
    tmp = out.with_suffix(".desc.tmp")
    args = [
        "protoc",
        f"-I{comet / 'proto'}",
        f"-I{gogo}",
        f"-I{well_known}",
        "--include_imports",
        f"--descriptor_set_out={tmp}",
        ABCI_PROTO,
    ]
    if protoc.main(args) != 0:
        raise CometBFTUnavailable(f"protoc failed on {ABCI_PROTO} of {COMETBFT_MODULE}@{COMETBFT_VERSION}")
    tmp.replace(out)
    return out


def main() -> int:
    path = install_binary()
    print(f"cometbft {installed_version(path)} at {path}")
    print(f"ABCI descriptors at {build_descriptors()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
