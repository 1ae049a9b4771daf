#!/usr/bin/env bash
# Guard: exactly one solana-sysvar version in the localnet dependency tree.
# Two versions make native CPI from the program silently do nothing (see DESIGN.md §2).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT/localnet"

if ! out=$(cargo tree -i solana-sysvar --locked --prefix none 2>&1); then
    printf '%s\n' "$out" >&2
    echo "error: 'cargo tree -i solana-sysvar' failed; more than one solana-sysvar version?" >&2
    exit 1
fi
versions=$(printf '%s\n' "$out" | awk '$1 == "solana-sysvar" {print $2}' | sort -u)
count=$(printf '%s\n' "$versions" | grep -c . || true)
locked=$(grep -c '^name = "solana-sysvar"$' Cargo.lock || true)
if [ "$count" -ne 1 ] || [ "$locked" -ne 1 ]; then
    echo "error: expected exactly one solana-sysvar version, found tree: [$versions], Cargo.lock entries: $locked" >&2
    exit 1
fi
echo "solana-sysvar: single version ${versions}"
