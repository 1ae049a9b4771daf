"""The validator process itself: startup output, preloaded programs, fixtures, in-memory state."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

from conftest import LAMPORTS_PER_SOL, Localnet
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

from perpool.localnet import LocalnetProcess, airdrop, parse_faucet_line
from perpool.program import PROGRAM_ID

MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
PYTH_RECEIVER_PROGRAM_ID = Pubkey.from_string("rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ")


def test_startup_output_and_readiness(start_localnet: Callable[..., LocalnetProcess]) -> None:
    launched = time.monotonic()
    net = start_localnet()
    ready_after = time.monotonic() - launched
    # The requirement is ~1 s for a built binary (see bench/startup.py); allow for a loaded machine.
    assert ready_after < 10, f"not ready after {ready_after:.1f}s"
    lines = net.stdout_path.read_text().splitlines()
    assert f"RPC URL: http://127.0.0.1:{net.port}" in lines
    assert f"Program Id: {PROGRAM_ID}" in lines
    faucet_lines = [line for line in lines if line.startswith("Faucet keypair: ")]
    assert len(faucet_lines) == 1
    faucet_path = parse_faucet_line(faucet_lines[0])
    assert faucet_path is not None
    assert faucet_path.is_file()
    assert faucet_path == net.ledger / "faucet-keypair.json"
    # If the line also shows the pubkey, it is the faucet's.
    assert str(net.faucet().pubkey()) in faucet_lines[0] or faucet_lines[0].endswith(".json")
    assert "Ready" in lines
    assert lines.index("Ready") > lines.index(faucet_lines[0])


async def test_programs_are_preloaded(client: AsyncClient) -> None:
    for program_id in (
        PROGRAM_ID,
        TOKEN_PROGRAM_ID,
        TOKEN_2022_PROGRAM_ID,
        ASSOCIATED_TOKEN_PROGRAM_ID,
        MEMO_PROGRAM_ID,
    ):
        account = (await client.get_account_info(program_id, Confirmed)).value
        assert account is not None, f"{program_id} is not loaded"
        assert account.executable, f"{program_id} is not executable"


async def test_missing_account_is_null(client: AsyncClient) -> None:
    assert (await client.get_account_info(Keypair().pubkey(), Confirmed)).value is None
    assert (await client.get_balance(Keypair().pubkey(), Confirmed)).value == 0


async def test_account_fixture_is_loaded(
    start_localnet: Callable[..., LocalnetProcess], tmp_path: Path
) -> None:
    address = Keypair().pubkey()
    data = bytes(range(256)) * 3 + b"perpool"
    fixture = {
        "pubkey": str(address),
        "account": {
            "lamports": 4_242_424,
            "data": [base64.b64encode(data).decode(), "base64"],
            "owner": str(PYTH_RECEIVER_PROGRAM_ID),
            "executable": False,
            "rentEpoch": 0,
            "space": len(data),
        },
    }
    path = tmp_path / "price-account.json"
    path.write_text(json.dumps(fixture))
    net = start_localnet(extra_args=["--account", str(address), str(path)])
    async with AsyncClient(net.url, commitment=Confirmed) as client:
        account = (await client.get_account_info(address, Confirmed)).value
        assert account is not None
        assert account.owner == PYTH_RECEIVER_PROGRAM_ID
        assert account.lamports == 4_242_424
        assert account.data == data
        assert not account.executable


async def test_state_is_in_memory_and_faucet_key_is_reused(
    start_localnet: Callable[..., LocalnetProcess], tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    first = start_localnet(ledger=ledger)
    faucet = first.faucet().pubkey()
    assert (ledger / "faucet-keypair.json").is_file()
    funded = Keypair().pubkey()
    async with AsyncClient(first.url, commitment=Confirmed) as client:
        await airdrop(client, funded, LAMPORTS_PER_SOL)
        assert (await client.get_balance(funded, Confirmed)).value == LAMPORTS_PER_SOL
    first.stop()

    second = start_localnet(ledger=ledger, extra_args=["--reset"])
    assert second.faucet().pubkey() == faucet
    async with AsyncClient(second.url, commitment=Confirmed) as client:
        # A restart starts from genesis: the airdrop of the first run is gone.
        assert (await client.get_balance(funded, Confirmed)).value == 0
        assert (await client.get_balance(faucet, Confirmed)).value > 0


def test_session_localnet_alive(localnet: Localnet) -> None:
    if localnet.process is not None:
        assert localnet.process.alive()
