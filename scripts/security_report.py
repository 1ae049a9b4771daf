"""Regenerate the case table in SECURITY_REPORT.md from a run of the adversarial suite.

    .venv/bin/python scripts/security_report.py              # runs pytest tests/adversarial
    .venv/bin/python scripts/security_report.py --json F     # uses a ledger a run already wrote

The table sits between the ``<!-- cases:begin -->`` and ``<!-- cases:end -->`` markers; the rest
of the report is prose and stays as it is. Exits non-zero when the run failed or any hostile
case was accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "SECURITY_REPORT.md"
BEGIN, END = "<!-- cases:begin -->", "<!-- cases:end -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="a ledger written by PERPOOL_SECURITY_REPORT")
    args = parser.parse_args()
    status = 0
    path = args.json
    if path is None:
        path = Path(tempfile.mkdtemp()) / "security.json"
        env = os.environ | {"PERPOOL_SECURITY_REPORT": str(path)}
        pytest = ROOT / ".venv" / "bin" / "pytest"
        status = subprocess.call(
            [str(pytest), "-q", "-p", "no:cacheprovider", "tests/adversarial"], cwd=ROOT, env=env
        )
    ledger = json.loads(path.read_text())
    text = REPORT.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    REPORT.write_text(f"{head}{BEGIN}\n{ledger['markdown']}\n{END}{tail}")
    classes = ledger["classes"]
    accepted = sum(int(row.get("accepted", 0)) for row in classes.values())
    print(f"{REPORT.name}: {len(classes)} classes, {accepted} accepted")
    return 1 if status or accepted else 0


if __name__ == "__main__":
    sys.exit(main())
