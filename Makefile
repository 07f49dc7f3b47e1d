# One-command setup on a fresh machine: a virtualenv in .venv with both native
# builds (Rust via maturin, Cython via setup.py) and every dependency.
# Stamps make re-runs cheap: each native part rebuilds only when its sources change.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
# Tools the project installs run first from .venv/bin, whatever the caller's shell
# has on PATH (cython-lint, for one, runs pycodestyle as a subprocess found on PATH).
export PATH := $(CURDIR)/$(BIN):$(PATH)
unexport VIRTUAL_ENV PYTHONPATH PYTHONHOME
RUST_SRC := $(shell find ext/rust/src -name '*.rs') ext/rust/Cargo.toml ext/rust/Cargo.lock ext/rust/pyproject.toml ext/rust/.cargo/config.toml
CYTHON_SRC := $(wildcard ext/cython/*.pyx ext/cython/*.pxd ext/cython/*.pxi) setup.py pyproject.toml

.PHONY: setup run test lint lint-py lint-cython lint-rust unit bench-tiny primitives engine finance clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.native: $(PY) $(RUST_SRC)
	$(PY) -m pip install -q ./ext/rust
	touch $@

$(VENV)/.tierchain: $(PY) $(CYTHON_SRC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# The pinned CometBFT binary (built from the Go module proxy into .venv/bin) and the ABCI
# message descriptors protoc'd from its own .proto files (tierchain.replication.cometbft).
$(VENV)/.cometbft: $(VENV)/.tierchain core/tierchain/replication/cometbft.py
	$(PY) -m tierchain.replication.cometbft
	touch $@

# The network API's descriptors, compiled from its committed .proto (tierchain.api.schema).
$(VENV)/.api: $(VENV)/.tierchain $(wildcard core/tierchain/api/proto/tierchain/api/v1/*.proto)
	$(PY) -m tierchain.api.schema
	touch $@

setup: $(VENV)/.native $(VENV)/.tierchain $(VENV)/.cometbft $(VENV)/.api
	$(PY) -c "import tierchain, tierchain._hot, tierchain_native, tierchain.replication.abci_pb as m; m.Request"

# The Go client (clients/go; docs/api.md, "A Go client"): stubs generated from node.proto,
# vetted, the Go unit tests run, the demo built at clients/go/.bin/tierchain-demo. The
# pytest tests/api/test_go_client.py runs the same script, so `make unit` covers it.
.PHONY: go-client
go-client: $(VENV)/.tierchain
	bash clients/go/build.sh --test

# Main job: a solo chain (embedded, durable commits) under a transfer load for ~30 s,
# printing committed TPS and latency as it goes.
run: setup
	$(BIN)/tierchain load --seconds 30 --out bench/out/load.json

lint: lint-py lint-cython lint-rust

lint-py: setup
	$(BIN)/ruff check core tests bench docs/*.py
	$(BIN)/ruff format --check core tests bench docs/*.py

lint-cython: setup
	$(BIN)/cython-lint ext/cython
	@# cython-lint skips .pxi files: lint copies of them under a .pyx name.
	@tmp=$$(mktemp -d) && for f in ext/cython/*.pxi; do cp $$f $$tmp/$$(basename $$f .pxi)_pxi.pyx; done \
	  && $(BIN)/cython-lint --max-line-length 110 $$tmp; rc=$$?; rm -rf $$tmp; exit $$rc

lint-rust: setup
	cd ext/rust && cargo clippy --all-targets --quiet -- -D warnings

# Headless Chromium for the web explorer's browser tests (tests/api/test_explorer.py): Debian's
# chromium and chromium-driver at the paths the tests name, so nothing is downloaded at run time.
# Installed with apt-get when either is missing: as root, else through `sudo -n`.
.PHONY: browser
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "make browser: /usr/bin/chromium or /usr/bin/chromedriver is missing and this user" \
	  "can neither install packages nor sudo without a password: as root, run" \
	  "apt-get install chromium chromium-driver" >&2; exit 1; fi; \
	command -v apt-get >/dev/null 2>&1 || { echo "make browser: no apt-get here; install Chromium" \
	  "and its driver at /usr/bin/chromium and /usr/bin/chromedriver" >&2; exit 1; }; \
	$$SUDO apt-get update -q && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver && \
	[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || \
	{ echo "make browser: installing chromium chromium-driver failed" >&2; exit 1; }

unit: setup browser
	cd ext/rust && cargo test --quiet
	$(PY) -m pytest -q tests

# Benchmarks with tiny parameters so they cannot rot (figures are not checked).
bench-tiny: setup
	$(PY) -m pytest -q bench --benchmark-disable-gc --benchmark-min-rounds=1 --benchmark-max-time=0.01 --benchmark-warmup=off
	$(PY) bench/primitives.py --tiny --out bench/out/primitives-tiny.json
	$(PY) bench/confidential.py --tiny --out bench/out/confidential-tiny.json
	$(PY) bench/sm_primitives.py --tiny --out bench/out/sm_primitives-tiny.json
	$(PY) bench/confidential_mix.py --tiny --out bench/out/confidential_mix-tiny.json
	$(PY) bench/engine.py --tiny --out bench/out/engine-tiny.json
	$(PY) bench/execute.py --tiny --out bench/out/execute-tiny.json
	$(PY) bench/prefetch.py --tiny --out bench/out/prefetch-tiny.json
	$(PY) bench/suites.py --tiny --out bench/out/suites-tiny.json
	$(PY) bench/finance.py --tiny --out bench/out/finance-tiny.json
	$(PY) bench/state_tree.py --tiny --out bench/out/state_tree-tiny.json
	$(PY) bench/tree_blocks.py --tiny --workers 2 --out bench/out/tree_blocks-tiny.json
	$(PY) bench/admission.py --tiny --out bench/out/admission-tiny.json
	$(PY) bench/verify_keys.py --tiny --out bench/out/verify_keys-tiny.json
	$(PY) bench/rpc_burst.py --tiny --out bench/out/rpc_burst-tiny.json
	$(PY) bench/replication.py --tiny --out bench/out/replication-tiny.json
	$(PY) bench/abci_app.py --tiny --out bench/out/abci_app-tiny.json
	$(PY) bench/recon.py --tiny --out bench/out/recon-tiny.json
	$(PY) bench/sharing.py --tiny --out bench/out/sharing-tiny.json
	$(PY) bench/finance_mix.py --tiny --out bench/out/finance_mix-tiny.json
	$(PY) bench/api.py --tiny --out bench/out/api-tiny.json
	$(PY) -m bench report --tiny

test: lint unit bench-tiny

primitives: setup
	$(PY) bench/primitives.py --out bench/out/primitives.json

engine: setup
	$(PY) bench/engine.py --out bench/out/engine.json

finance: setup
	$(PY) bench/finance.py --out bench/out/finance.json

# Every table and plot of docs/benchmarks.md in one run (bench suite, docs/benchmarks.md).
# 10M accounts is left out until genesis through the state tree fits (docs/benchmarks.md).
.PHONY: bench-report
bench-report: setup
	$(PY) -m bench report

clean:
	rm -rf $(VENV) build core/tierchain/*.so ext/cython/*.c ext/rust/target
