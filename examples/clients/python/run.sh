#!/usr/bin/env bash
# Runs the scenario of ../README.md with the Python client: makes a
# virtualenv, installs the pinned requirements, generates the gRPC code from
# the repository's proto/ into gen/, and runs scenario.py.
#
#   CATALOG_GATEWAY  the gateway (default localhost:50051)
#   CATALOG_BACKEND  the backend, for its ChaosService (default localhost:50052)
#   CLIENT_VENV      where the virtualenv lives (default: .venv beside this file)
#   PYTHON           the interpreter that makes the virtualenv (default python3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
protos="$(cd "$here/../../../proto" && pwd)"
venv="${CLIENT_VENV:-$here/.venv}"

if [[ ! -x "$venv/bin/python" ]]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi

# Install only when requirements.txt changed since the last install: the
# stamp is a copy of the requirements.txt that was installed.
stamp="$venv/requirements.installed"
if ! cmp -s "$here/requirements.txt" "$stamp"; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi

# Regenerate from scratch every run, so that gen/ never holds code of a
# .proto that changed or went away. grpc_tools.protoc adds the include path
# of the well-known types (google/protobuf/timestamp.proto...) by itself.
rm -rf "$here/gen"
mkdir -p "$here/gen"
find "$protos" -name '*.proto' -exec "$venv/bin/python" -m grpc_tools.protoc \
  --proto_path="$protos" \
  --python_out="$here/gen" \
  --pyi_out="$here/gen" \
  --grpc_python_out="$here/gen" \
  {} +

exec "$venv/bin/python" "$here/scenario.py"
