#!/usr/bin/env bash
# Run the test suite against a real perpool-localnet (set up first if needed).
# Extra arguments go to pytest, e.g. ./scripts/test.sh -k spl -x
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/perpool/target}

scripts/setup.sh

no_tests() {
    echo "error: pytest collected no tests${1:+ in $1}" >&2
    exit 1
}

set +e
if [ "$#" -gt 0 ] || [ "${PERPOOL_TEST_SHARDS:-2}" = 1 ]; then
    .venv/bin/pytest "$@"
    status=$?
    set -e
    if [ "$status" -eq 5 ]; then no_tests; fi
    exit "$status"
fi

# The whole suite: the adversarial suite and the rest run side by side (each test module starts
# its own validator, and the tests mostly wait for slots, so two shards share two cores well).
# The adversarial shard's output follows the other's. PERPOOL_TEST_SHARDS=1 runs one pytest.
adversarial_log=$(mktemp -t perpool-adversarial.XXXXXX)
.venv/bin/pytest tests/adversarial >"$adversarial_log" 2>&1 &
adversarial_pid=$!
.venv/bin/pytest tests --ignore=tests/adversarial
rest=$?
wait "$adversarial_pid"
adversarial=$?
set -e
printf '\n=== tests/adversarial (run alongside) ===\n'
cat "$adversarial_log"
rm -f "$adversarial_log"
if [ "$rest" -eq 5 ]; then no_tests "tests (without tests/adversarial)"; fi
if [ "$adversarial" -eq 5 ]; then no_tests tests/adversarial; fi
echo "shards: tests (without tests/adversarial) exit $rest, tests/adversarial exit $adversarial"
if [ "$rest" -ne 0 ]; then exit "$rest"; fi
exit "$adversarial"
