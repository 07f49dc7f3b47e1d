#!/usr/bin/env bash
# Build the Go client (docs/api.md, "A Go client"): generate the gRPC messages and stubs
# from the committed node.proto, vet, and build clients/go/.bin/tierchain-demo.
#
#   clients/go/build.sh          # generate + gofmt check + vet + build
#   clients/go/build.sh --test   # and run the Go unit tests (wire and proof vectors)
#
# Idempotent: the generated files are rewritten only when they change, and Go's build cache
# makes a warm run take seconds. Nothing generated is committed (clients/go/.gitignore).
# The code generators are the module's own tools (go.mod's `tool` lines: protoc-gen-go and
# protoc-gen-go-grpc at pinned versions, checked against go.sum), built into .bin/, never
# into a global GOBIN; protoc is grpcio-tools' (the project's .venv, as tierchain.api.schema).
# Needs a Go toolchain (go on PATH, or /usr/local/go/bin/go) and, on a machine whose module
# cache is empty, the Go module proxy.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

run_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) run_tests=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

if command -v go >/dev/null 2>&1; then
  GO="$(command -v go)"
elif [ -x /usr/local/go/bin/go ]; then
  GO=/usr/local/go/bin/go
else
  echo "build.sh: no Go toolchain (go on PATH or /usr/local/go/bin/go); the Go client needs one" >&2
  exit 1
fi
PY="${PYTHON:-$root/.venv/bin/python}"
if ! "$PY" -c "import grpc_tools.protoc" 2>/dev/null; then
  echo "build.sh: $PY has no grpcio-tools (run make setup first)" >&2
  exit 1
fi

# The machine's own Go (never a downloaded toolchain); go.mod and go.sum as committed.
export GOTOOLCHAIN=local
export GOFLAGS="-mod=readonly -buildvcs=false"
limit_s="${TIERCHAIN_GO_BUILD_TIMEOUT_S:-300}" # per step: a stalled download fails, never hangs
step() { timeout "$limit_s" "$@"; }

mkdir -p .bin
step "$GO" build -o .bin/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

# node.proto's go_package is tierchain.example/api/v1: this module's api/v1 directory.
gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT
well_known="$("$PY" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"
step "$PY" -m grpc_tools.protoc \
  -I "$root/core/tierchain/api/proto" -I "$well_known" \
  --plugin=protoc-gen-go="$here/.bin/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$here/.bin/protoc-gen-go-grpc" \
  --go_out="$gen" --go_opt=module=tierchain.example \
  --go-grpc_out="$gen" --go-grpc_opt=module=tierchain.example \
  tierchain/api/v1/node.proto
mkdir -p api/v1
for f in node.pb.go node_grpc.pb.go; do
  cmp -s "$gen/api/v1/$f" "api/v1/$f" || cp "$gen/api/v1/$f" "api/v1/$f"
done

unformatted="$("$("$GO" env GOROOT)/bin/gofmt" -l cmd tierchain)"
if [ -n "$unformatted" ]; then
  echo "build.sh: not gofmt-formatted: $unformatted" >&2
  exit 1
fi
step "$GO" vet ./...
step "$GO" build -o .bin/tierchain-demo ./cmd/tierchain-demo
if [ "$run_tests" = 1 ]; then
  step "$GO" test -count=1 ./...
fi
echo "build.sh: built $here/.bin/tierchain-demo"
