#!/usr/bin/env bash
# Run the test suite against a real perpool-localnet (set up first if needed).
# Extra arguments go to pytest, e.g. ./scripts/test.sh -k spl -x
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/perpool/target}

scripts/setup.sh

set +e
.venv/bin/pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
