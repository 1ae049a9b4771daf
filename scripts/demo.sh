#!/usr/bin/env bash
# Set everything up, start a local validator, run the demo against it, stop it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/perpool/target}

scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
