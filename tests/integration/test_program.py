"""The Perpool program through anchorpy, loaded from idl/perpool.json.

``init`` may run once per chain, so this module uses its own validator started from genesis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from anchorpy import Program, Provider, Wallet
from anchorpy.error import ProgramError
from anchorpy.program.namespace.methods import MethodsBuilder
from conftest import LAMPORTS_PER_SOL, start_validator
from pyheck import snake
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.types import MemcmpOpts, TxOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from support import FEE_PER_SIGNATURE, b58encode, balance, token_amount, transaction_logs

from perpool.localnet import LocalnetProcess, LocalnetRpc, airdrop
from perpool.program import (
    PROGRAM_ID,
    account_discriminator,
    config_pda,
    error_names,
    load_idl,
    parse_events,
)

CONFIG_SIZE = 8 + 32 + 8 + 1
TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
CONFIRM = TxOpts(skip_confirmation=False, preflight_commitment=Confirmed)


@pytest.fixture(scope="module")
def program_net() -> Iterator[LocalnetProcess]:
    net = start_validator()
    yield net
    net.stop()


@pytest.fixture
async def program(program_net: LocalnetProcess) -> AsyncIterator[Program]:
    payer = Keypair()
    conn = AsyncClient(program_net.url, commitment=Confirmed, timeout=30)
    await airdrop(conn, payer.pubkey(), 100 * LAMPORTS_PER_SOL)
    provider = Provider(conn, Wallet(payer), CONFIRM)
    prog = Program(load_idl(), PROGRAM_ID, provider)
    try:
        yield prog
    finally:
        await prog.close()


def conn_of(program: Program) -> AsyncClient:
    return program.provider.connection


def payer_of(program: Program) -> Keypair:
    return program.provider.wallet.payer


async def init_config(program: Program) -> Signature:
    pda, _ = config_pda()
    signature = (
        await program.methods["init"]
        .accounts(
            {
                "admin": program.provider.wallet.public_key,
                "config": pda,
                "system_program": SYSTEM_PROGRAM_ID,
            }
        )
        .rpc()
    )
    return signature


async def ensure_config(program: Program) -> None:
    pda, _ = config_pda()
    if (await conn_of(program).get_account_info(pda, Confirmed)).value is None:
        await init_config(program)


@dataclass
class TokenSetup:
    token: AsyncToken
    mint_authority: Keypair
    alice: Keypair
    bob: Keypair
    alice_account: Pubkey
    bob_account: Pubkey


async def token_setup(program: Program, amount: int = 1_000_000) -> TokenSetup:
    conn = conn_of(program)
    payer = payer_of(program)
    mint_authority = payer  # solana-py's AsyncToken.mint_to signs with the payer only
    alice, bob = Keypair(), Keypair()
    token = await AsyncToken.create_mint(conn, payer, mint_authority.pubkey(), 6, TOKEN_PROGRAM_ID)
    alice_account = await token.create_associated_token_account(alice.pubkey())
    bob_account = await token.create_associated_token_account(bob.pubkey())
    await token.mint_to(alice_account, mint_authority, amount, opts=CONFIRM)
    return TokenSetup(token, mint_authority, alice, bob, alice_account, bob_account)


def transfer_tokens(
    program: Program, owner: Keypair, source: Pubkey, dest: Pubkey, amount: int
) -> MethodsBuilder:
    return (
        program.methods["transfer_tokens"]
        .args([amount])
        .accounts(
            {
                "owner": owner.pubkey(),
                "from": source,
                "to": dest,
                "token_program": TOKEN_PROGRAM_ID,
            }
        )
        .signers([owner])
    )


def preflight_logs(exc: BaseException) -> list[str]:
    """The simulation logs carried by a -32002 preflight failure."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, RPCException):
        cause = cause.__cause__
    assert cause is not None, f"expected an RPC preflight failure, got {exc!r}"
    err = cause.args[0]
    assert isinstance(err, SendTransactionPreflightFailureMessage), err
    assert err.data.logs is not None
    return list(err.data.logs)


# ------------------------------------------------------------------------------------------------


async def test_init_creates_config_pda(program: Program, program_net: LocalnetProcess) -> None:
    conn = conn_of(program)
    admin = program.provider.wallet.public_key
    pda, bump = config_pda()
    assert (await conn.get_account_info(pda, Confirmed)).value is None

    async with LocalnetRpc(program_net.url) as rpc:
        clock_before = (await rpc.get_clock()).unix_timestamp
        payer_before = await balance(conn, admin)
        signature = await init_config(program)
        clock_after = (await rpc.get_clock()).unix_timestamp

    config = await program.account["Config"].fetch(pda)
    assert config.admin == admin
    assert config.bump == bump
    assert clock_before <= config.created_at <= clock_after

    raw = (await conn.get_account_info(pda, Confirmed)).value
    assert raw is not None
    assert raw.owner == PROGRAM_ID
    assert len(raw.data) == CONFIG_SIZE
    rent = (await conn.get_minimum_balance_for_rent_exemption(CONFIG_SIZE)).value
    assert raw.lamports == rent
    # The admin paid the rent (system CPI from the native program) and one signature fee.
    assert await balance(conn, admin) == payer_before - rent - FEE_PER_SIGNATURE

    logs = await transaction_logs(conn, signature)
    assert logs[0] == f"Program {PROGRAM_ID} invoke [1]"
    assert "Program log: Instruction: Init" in logs
    assert "Program 11111111111111111111111111111111 invoke [2]" in logs
    assert f"Program log: config created by {admin} at {config.created_at}" in logs
    assert logs[-1] == f"Program {PROGRAM_ID} success"
    assert any(line.startswith("Program data: ") for line in logs)

    events = parse_events(program, logs)
    assert [e.name for e in events] == ["ConfigInitialized"]
    assert events[0].data.admin == admin
    assert events[0].data.created_at == config.created_at


async def test_init_twice_is_rejected(program: Program) -> None:
    await ensure_config(program)
    pda, _ = config_pda()
    before = (await conn_of(program).get_account_info(pda, Confirmed)).value
    assert before is not None

    with pytest.raises(RPCException) as excinfo:
        await init_config(program)
    logs = preflight_logs(excinfo.value)
    assert any("already in use" in line for line in logs), logs
    assert any(line.startswith(f"Program {PROGRAM_ID} failed") for line in logs), logs

    after = (await conn_of(program).get_account_info(pda, Confirmed)).value
    assert after == before


async def test_config_found_by_program_account_filters(program: Program) -> None:
    await ensure_config(program)
    pda, _ = config_pda()
    conn = conn_of(program)
    discriminator = account_discriminator("Config")
    resp = await conn.get_program_accounts(
        PROGRAM_ID,
        Confirmed,
        encoding="base64",
        filters=[CONFIG_SIZE, MemcmpOpts(offset=0, bytes=b58encode(discriminator))],
    )
    assert [a.pubkey for a in resp.value] == [pda]
    # anchorpy's own discriminator filter sees the same single account.
    everything = await program.account["Config"].all()
    assert [a.public_key for a in everything] == [pda]
    # A size that matches nothing returns an empty list, not an error.
    none = await conn.get_program_accounts(
        PROGRAM_ID, Confirmed, encoding="base64", filters=[CONFIG_SIZE + 1]
    )
    assert none.value == []


async def test_transfer_tokens_moves_tokens_and_emits_event(program: Program) -> None:
    conn = conn_of(program)
    s = await token_setup(program)
    builder = transfer_tokens(program, s.alice, s.alice_account, s.bob_account, 400_000)
    signature = await builder.rpc()

    assert await token_amount(conn, s.alice_account) == 600_000
    assert await token_amount(conn, s.bob_account) == 400_000
    assert (await s.token.get_mint_info()).supply == 1_000_000

    logs = await transaction_logs(conn, signature)
    assert "Program log: Instruction: TransferTokens" in logs
    # The CPI into the SBF SPL Token program is nested at depth 2.
    cpi_start = logs.index(f"Program {TOKEN_PROGRAM} invoke [2]")
    assert logs[cpi_start + 1] == "Program log: Instruction: Transfer"
    assert any(line.startswith(f"Program {TOKEN_PROGRAM} success") for line in logs[cpi_start:])
    assert logs[-1] == f"Program {PROGRAM_ID} success"

    events = parse_events(program, logs)
    assert [e.name for e in events] == ["TokensTransferred"]
    event = events[0].data
    # anchorpy appends "_" to field names that are Python keywords.
    assert (event.from_, event.to, event.amount) == (s.alice_account, s.bob_account, 400_000)


async def test_simulate_shows_event_without_moving_tokens(program: Program) -> None:
    conn = conn_of(program)
    s = await token_setup(program)
    builder = transfer_tokens(program, s.alice, s.alice_account, s.bob_account, 5)
    result = await builder.simulate()
    assert [e.name for e in result.events] == ["TokensTransferred"]
    assert result.events[0].data.amount == 5
    assert "Program log: Instruction: TransferTokens" in result.raw
    assert await token_amount(conn, s.alice_account) == 1_000_000
    assert await token_amount(conn, s.bob_account) == 0


async def assert_rejected(
    program: Program, builder: MethodsBuilder, expected: str, accounts: list[Pubkey]
) -> list[str]:
    """Send, expect the named program error, and check that no token balance changed."""
    conn = conn_of(program)
    before = [await token_amount(conn, a) for a in accounts]
    payer_before = await balance(conn, payer_of(program).pubkey())
    with pytest.raises(ProgramError) as excinfo:
        await builder.rpc()
    err = excinfo.value
    names = error_names(program.idl)
    assert names.get(err.code) == expected, f"got code {err.code} ({err.msg})"
    logs = list(err.logs or [])
    assert any(f"Error Code: {expected}" in line for line in logs), logs
    assert f"Program {PROGRAM_ID} failed: custom program error: {hex(err.code)}" in logs
    assert [await token_amount(conn, a) for a in accounts] == before
    assert await balance(conn, payer_of(program).pubkey()) == payer_before
    return logs


async def test_mismatched_mints_fail_with_named_error(program: Program) -> None:
    s = await token_setup(program)
    other = await token_setup(program)
    # Alice's account of mint A → Bob's account of mint B.
    builder = transfer_tokens(program, s.alice, s.alice_account, other.bob_account, 10)
    logs = await assert_rejected(
        program, builder, "MintMismatch", [s.alice_account, other.bob_account]
    )
    assert any("AnchorError caused by account: to" in line for line in logs), logs


async def test_zero_amount_fails_with_named_error(program: Program) -> None:
    s = await token_setup(program)
    builder = transfer_tokens(program, s.alice, s.alice_account, s.bob_account, 0)
    await assert_rejected(program, builder, "ZeroAmount", [s.alice_account, s.bob_account])


async def test_same_account_fails_with_named_error(program: Program) -> None:
    s = await token_setup(program)
    builder = transfer_tokens(program, s.alice, s.alice_account, s.alice_account, 10)
    await assert_rejected(program, builder, "SameAccount", [s.alice_account])


async def test_foreign_owner_cannot_move_tokens(program: Program) -> None:
    s = await token_setup(program)
    # Bob signs for Alice's account: Anchor's token::authority constraint rejects it.
    builder = transfer_tokens(program, s.bob, s.alice_account, s.bob_account, 10)
    conn = conn_of(program)
    with pytest.raises(ProgramError) as excinfo:
        await builder.rpc()
    assert excinfo.value.code == 2015  # ConstraintTokenOwner
    assert await token_amount(conn, s.alice_account) == 1_000_000
    assert await token_amount(conn, s.bob_account) == 0


def test_idl_matches_program_surface() -> None:
    idl = load_idl()
    assert sorted(snake(ix.name) for ix in idl.instructions) == ["init", "transfer_tokens"]
    assert error_names(idl) == {6000: "ZeroAmount", 6001: "MintMismatch", 6002: "SameAccount"}
    assert {acc.name for acc in idl.accounts} == {"Config"}
    assert {ev.name for ev in (idl.events or [])} == {"ConfigInitialized", "TokensTransferred"}
