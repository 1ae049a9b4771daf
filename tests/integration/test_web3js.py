"""The localnet through @solana/web3.js 1.x: its response schemas reject any shape that differs
from the real RPC. Runs where Node.js is installed and ``npm ci`` was run in ``tests/js``
(``.ci/run`` does both, and sets ``PERPOOL_REQUIRE_WEB3JS=1`` so the check fails there instead of
skipping); skips otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Localnet, websocket_url

JS_DIR = Path(__file__).resolve().parents[1] / "js"
WEB3 = JS_DIR / "node_modules" / "@solana" / "web3.js"


def test_web3js_client(localnet: Localnet, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not WEB3.is_dir():
        if os.environ.get("PERPOOL_REQUIRE_WEB3JS") == "1":
            pytest.fail("node and `npm ci` in tests/js are required here")
        pytest.skip("needs node and `npm ci` in tests/js")
    faucet = tmp_path / "faucet.json"
    faucet.write_text(json.dumps(list(bytes(localnet.faucet))))
    done = subprocess.run(
        [node, "web3_check.mjs", localnet.url, websocket_url(localnet), str(faucet)],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["accountChange"]["lamports"] == 1_000_000_000
    assert seen["logs"]["logs"][-1] == "Program 11111111111111111111111111111111 success"
    assert seen["slotChange"]["slot"] > seen["slotChange"]["parent"]
    results = seen["results"]
    assert results["voteAccounts"] == 1
    assert results["clusterNodes"] == 1
    assert results["feeForMessage"] == 5000
    assert results["blockhashValid"] is True
