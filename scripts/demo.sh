#!/usr/bin/env bash
# Set everything up, start a local validator, run the demo against it (with the keeper), write
# the report into demo-output/ (or --out DIR), stop the validator. Options: --help.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/perpool/target}

scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
