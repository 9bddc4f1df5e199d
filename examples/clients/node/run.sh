#!/usr/bin/env bash
# Runs the scenario of ../README.md with the Node.js client: installs the
# dependencies of package-lock.json, then runs scenario.js, which loads the
# repository's proto/ at run time.
#
#   CATALOG_GATEWAY  the gateway (default localhost:50051)
#   CATALOG_BACKEND  the backend, for its ChaosService (default localhost:50052)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# npm ci installs exactly package-lock.json, from scratch. Skip it when
# node_modules was installed from this very lock: the copy left beside it
# after the last install is the same. (package.json denies protobufjs its
# postinstall script, a version check of no use here.)
stamp="$here/node_modules/.installed-package-lock.json"
if ! cmp -s "$here/package-lock.json" "$stamp"; then
  (cd "$here" && npm ci --no-audit --no-fund)
  cp "$here/package-lock.json" "$stamp"
fi

exec node "$here/scenario.js"
