"""Perpool demo: start a localnet, airdrop, create a token, call the program, stop.

.venv/bin/python scripts/demo.py              # starts (and afterwards stops) its own localnet
.venv/bin/python scripts/demo.py --url URL    # uses a localnet that is already running
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from anchorpy import Program, Provider, Wallet
from anchorpy.error import ProgramError
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.types import TxOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID

from perpool.localnet import (
    DEFAULT_PORT,
    LocalnetError,
    LocalnetProcess,
    LocalnetRpc,
    airdrop,
    ensure_validator,
    free_port,
    port_is_free,
)
from perpool.program import PROGRAM_ID, config_pda, error_names, load_idl, parse_events

LAMPORTS_PER_SOL = 1_000_000_000
DECIMALS = 6
CONFIRM = TxOpts(skip_confirmation=False, preflight_commitment=Confirmed)


def say(text: str) -> None:
    print(text, flush=True)


def ui(amount: int) -> str:
    return f"{amount / 10**DECIMALS:,.{DECIMALS}f}"


async def token_balance(conn: AsyncClient, account: Pubkey) -> int:
    return int((await conn.get_token_account_balance(account, Confirmed)).value.amount)


async def run_demo(url: str) -> None:
    admin, bob = Keypair(), Keypair()
    async with AsyncClient(url, commitment=Confirmed, timeout=30) as conn:
        version = (await conn.get_version()).value
        say(f"connected to {url} (solana-core {version.solana_core})")

        await airdrop(conn, admin.pubkey(), 10 * LAMPORTS_PER_SOL)
        lamports = (await conn.get_balance(admin.pubkey(), Confirmed)).value
        say(f"airdropped {lamports / LAMPORTS_PER_SOL} SOL to admin {admin.pubkey()}")

        token = await AsyncToken.create_mint(
            conn, admin, admin.pubkey(), DECIMALS, TOKEN_PROGRAM_ID
        )
        say(f"created mint {token.pubkey} ({DECIMALS} decimals)")
        admin_ata = await token.create_associated_token_account(admin.pubkey())
        bob_ata = await token.create_associated_token_account(bob.pubkey())
        await token.mint_to(admin_ata, admin, 1_000 * 10**DECIMALS, opts=CONFIRM)
        say(f"minted {ui(1_000 * 10**DECIMALS)} to admin's token account {admin_ata}")

        provider = Provider(conn, Wallet(admin), CONFIRM)
        program = Program(load_idl(), PROGRAM_ID, provider)
        pda, _ = config_pda()

        if (await conn.get_account_info(pda, Confirmed)).value is None:
            sig = (
                await program.methods["init"]
                .accounts(
                    {"admin": admin.pubkey(), "config": pda, "system_program": SYSTEM_PROGRAM_ID}
                )
                .rpc()
            )
            say(f"init: {sig}")
            await print_events(conn, program, sig)
        else:
            say("init: the config already exists on this localnet, skipping")
        config = await program.account["Config"].fetch(pda)
        say(f"config {pda}: admin={config.admin} created_at={config.created_at} bump={config.bump}")

        amount = 250 * 10**DECIMALS
        sig = await (
            program.methods["transfer_tokens"]
            .args([amount])
            .accounts(
                {
                    "owner": admin.pubkey(),
                    "from": admin_ata,
                    "to": bob_ata,
                    "token_program": TOKEN_PROGRAM_ID,
                }
            )
            .rpc()
        )
        say(f"transfer_tokens {ui(amount)}: {sig}")
        await print_events(conn, program, sig)
        say(
            f"balances: admin {ui(await token_balance(conn, admin_ata))}, "
            f"bob {ui(await token_balance(conn, bob_ata))}"
        )

        try:
            await (
                program.methods["transfer_tokens"]
                .args([0])
                .accounts(
                    {
                        "owner": admin.pubkey(),
                        "from": admin_ata,
                        "to": bob_ata,
                        "token_program": TOKEN_PROGRAM_ID,
                    }
                )
                .rpc()
            )
            raise SystemExit("error: a zero-amount transfer was accepted")
        except ProgramError as err:
            name = error_names(program.idl).get(err.code, str(err.code))
            say(f"transfer_tokens 0 rejected as expected: {name} ({err.code}): {err.msg}")

        async with LocalnetRpc(url) as rpc:
            clock = await rpc.get_clock()
            say(f"chain clock: slot {clock.slot}, unix_timestamp {clock.unix_timestamp}")


async def print_events(conn: AsyncClient, program: Program, sig: Signature) -> None:
    tx = await conn.get_transaction(sig, commitment=Confirmed, max_supported_transaction_version=0)
    meta = tx.value.transaction.meta if tx.value is not None else None
    logs = list(meta.log_messages or []) if meta is not None else []
    for line in logs:
        if line.startswith("Program log: ") and not line.startswith("Program log: Instruction"):
            say(f"  log: {line.removeprefix('Program log: ')}")
    for event in parse_events(program, logs):
        say(
            f"  event {event.name}: "
            + ", ".join(f"{k.rstrip('_')}={v}" for k, v in vars(event.data).items())
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="use a running localnet instead of starting one")
    args = parser.parse_args(argv)
    if args.url:
        asyncio.run(run_demo(args.url))
        return 0
    try:
        binary = ensure_validator()
    except LocalnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    port = DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()
    try:
        net = LocalnetProcess.start(binary=binary, port=port)
    except (LocalnetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with net:
        say(f"started {Path(binary).name} at {net.url} (ledger {net.ledger}, state in memory)")
        asyncio.run(run_demo(net.url))
    say("localnet stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
