#!/usr/bin/env bash
# Set up a Perpool checkout: system packages, Rust toolchain, .venv with the Python package
# (editable, dev extras) and the perpool-localnet validator binary. Safe to re-run; steps that
# are already done are skipped. PERPOOL_SKIP_VALIDATOR_BUILD=1 leaves out the cargo build.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/perpool/target}

step() { printf '\n==> %s\n' "$*"; }

# 1. System packages (Debian/Ubuntu).
step "system packages"
scripts/install-system-deps.sh

# 2. Rust toolchain.
step "Rust toolchain"
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    if [ "${PERPOOL_NO_RUSTUP_INSTALL:-0}" = 1 ]; then
        echo "error: cargo not found; install Rust with rustup: https://rustup.rs" >&2
        exit 1
    fi
    echo "cargo not found: installing the stable Rust toolchain with rustup (https://rustup.rs)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
fi
cargo --version

# 3. Python virtual environment.
step "Python environment (.venv)"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
        echo "error: $PYTHON is $("$PYTHON" --version 2>&1); Perpool needs Python >= 3.11 (set PYTHON=...)" >&2
        exit 1
    fi
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.perpool-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ ! -x .venv/bin/perpool ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    touch "$stamp"
fi
.venv/bin/perpool --version

# 4. The validator.
if [ "${PERPOOL_SKIP_VALIDATOR_BUILD:-0}" = 1 ]; then
    echo "skipping the validator build (PERPOOL_SKIP_VALIDATOR_BUILD=1)"
    exit 0
fi
step "perpool-localnet (cargo build --release, target dir $CARGO_TARGET_DIR)"
(cd localnet && cargo build --release -p perpool-localnet)
ls -l "$CARGO_TARGET_DIR/release/perpool-localnet"
