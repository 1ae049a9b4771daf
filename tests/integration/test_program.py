"""The Perpool program through anchorpy, loaded from idl/perpool.json (issue 2's runtime proofs).

- ``init`` creates the Perpool and Multisig PDAs through system-program CPIs from the native
  program;
- ``add_liquidity`` moves tokens and mints LP tokens through CPIs into the SBF SPL Token program;
- Anchor constraint failures surface as named program errors with their logs;
- events (``Program data:``) decode with anchorpy's EventParser and ``msg!`` output appears as
  ``Program log:`` lines.

``init`` may run once per chain, so this module uses its own validator started from genesis.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from anchorpy import Program, Provider, Wallet
from anchorpy.error import ProgramError
from anchorpy.program.namespace.methods import MethodsBuilder
from conftest import LAMPORTS_PER_SOL, start_validator
from pyheck import snake
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.types import MemcmpOpts, TxOpts
from solders.instruction import AccountMeta
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from support import FEE_PER_SIGNATURE, balance, token_amount, transaction_logs

from perpool import pda
from perpool.client import PerpoolClient, all_permissions
from perpool.custody_config import custody_config
from perpool.localnet import LocalnetProcess, LocalnetRpc, airdrop, find_repo_root
from perpool.program import (
    PROGRAM_ID,
    account_discriminator,
    b58encode,
    error_names,
    load_idl,
    parse_events,
)

TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
SYSTEM_PROGRAM = "11111111111111111111111111111111"
CONFIRM = TxOpts(skip_confirmation=False, preflight_commitment=Confirmed)
POOL = "main"
SOL = 10**9
# Account sizes from the Rust layouts (8-byte discriminator + InitSpace).
MULTISIG_SIZE = 8 + (1 + 1 + 1 + 32 * 6 + 6 + 32 + 1)
MAX_POOLS = 32  # state/perpool.rs
PERPOOL_SIZE = 8 + (7 + 32 + (4 + 32 * MAX_POOLS) + 8 + 1 + 1)
PROGRAM_SRC = find_repo_root() / "localnet" / "programs" / "perpool" / "src"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def program_net() -> Iterator[LocalnetProcess]:
    net = start_validator()
    yield net
    net.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def program(program_net: LocalnetProcess) -> AsyncIterator[Program]:
    payer = Keypair()
    conn = AsyncClient(program_net.url, commitment=Confirmed, timeout=30)
    await airdrop(conn, payer.pubkey(), 100 * LAMPORTS_PER_SOL)
    prog = Program(load_idl(), PROGRAM_ID, Provider(conn, Wallet(payer), CONFIRM))
    try:
        yield prog
    finally:
        await prog.close()


def conn_of(program: Program) -> AsyncClient:
    return program.provider.connection


def payer_of(program: Program) -> Keypair:
    return program.provider.wallet.payer


def init_builder(program: Program, signer: Keypair | None = None) -> MethodsBuilder:
    admin = signer or payer_of(program)
    params = {
        "min_signatures": 1,
        "oracle_authority": admin.pubkey(),
        "permissions": all_permissions(True),
    }
    builder = (
        program.methods["init"]
        .args([params])
        .accounts(
            {
                "upgrade_authority": admin.pubkey(),
                "multisig": pda.multisig(),
                "transfer_authority": pda.transfer_authority(),
                "perpool": pda.perpool(),
                "perpool_program": PROGRAM_ID,
                "perpool_program_data": pda.program_data(),
                "system_program": SYSTEM_PROGRAM_ID,
            }
        )
        .remaining_accounts([AccountMeta(admin.pubkey(), is_signer=False, is_writable=False)])
    )
    return builder.signers([admin]) if signer else builder


def preflight_logs(exc: BaseException) -> list[str]:
    """The simulation logs carried by a -32002 preflight failure."""
    assert isinstance(exc, RPCException), exc
    err = exc.args[0]
    assert isinstance(err, SendTransactionPreflightFailureMessage), err
    assert err.data.logs is not None
    return list(err.data.logs)


async def ensure_init(program: Program) -> None:
    if (await conn_of(program).get_account_info(pda.perpool(), Confirmed)).value is None:
        await init_builder(program).rpc()


@dataclass
class Exchange:
    """A pool with SOL ($100) and USDC ($1) custodies, and Alice holding both tokens."""

    client: PerpoolClient
    sol: AsyncToken
    usdc: AsyncToken
    alice: Keypair
    alice_sol: Pubkey
    alice_usdc: Pubkey
    alice_lp: Pubkey


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def x(program: Program, program_net: LocalnetProcess) -> Exchange:
    """Created (after ``init``) when the first test needs it."""
    await ensure_init(program)
    payer = payer_of(program)
    client = PerpoolClient(program, payer)
    conn = conn_of(program)
    await client.add_pool(POOL, payer)
    tokens = []
    for decimals, stable, price, expo in ((9, False, 100_00, -2), (6, True, 1_000_000, -6)):
        token = await AsyncToken.create_mint(
            conn, payer, payer.pubkey(), decimals, TOKEN_PROGRAM_ID
        )
        config = custody_config(
            pda.custom_oracle(pda.pool(POOL), token.pubkey),
            client_types=program.type,
            max_price_age_sec=3_600,
        )
        await client.add_custody(POOL, token.pubkey, stable, config, payer)
        async with LocalnetRpc(program_net.url) as rpc:
            now = (await rpc.get_clock("confirmed")).unix_timestamp
        await client.set_price(
            POOL, token.pubkey, payer, price=price, expo=expo, conf=0, ema=price, publish_time=now
        )
        tokens.append(token)
    sol, usdc = tokens
    alice = Keypair()
    await airdrop(conn, alice.pubkey(), 10 * LAMPORTS_PER_SOL)
    alice_sol = await sol.create_associated_token_account(alice.pubkey())
    alice_usdc = await usdc.create_associated_token_account(alice.pubkey())
    await sol.mint_to(alice_sol, payer, 10 * SOL, opts=CONFIRM)
    await usdc.mint_to(alice_usdc, payer, 1_000_000_000, opts=CONFIRM)
    lp_mint = AsyncToken(conn, pda.lp_token_mint(pda.pool(POOL)), TOKEN_PROGRAM_ID, payer)
    alice_lp = await lp_mint.create_associated_token_account(alice.pubkey())
    return Exchange(client, sol, usdc, alice, alice_sol, alice_usdc, alice_lp)


async def add_liquidity_builder(
    program: Program,
    x: Exchange,
    mint: Pubkey,
    amount: int,
    signer: Keypair | None = None,
    **overrides: Pubkey,
) -> MethodsBuilder:
    """Alice deposits ``amount`` of ``mint`` (``signer`` signs as the owner instead)."""
    owner = signer or x.alice
    pool_key = pda.pool(POOL)
    accounts = {
        "owner": owner.pubkey(),
        "funding_account": x.alice_sol if mint == x.sol.pubkey else x.alice_usdc,
        "lp_token_account": x.alice_lp,
        "transfer_authority": pda.transfer_authority(),
        "perpool": pda.perpool(),
        "pool": pool_key,
        "custody": pda.custody(pool_key, mint),
        "custody_oracle": pda.custom_oracle(pool_key, mint),
        "custody_token_account": pda.custody_token_account(pool_key, mint),
        "lp_token_mint": pda.lp_token_mint(pool_key),
        "token_program": TOKEN_PROGRAM_ID,
    } | overrides
    return (
        program.methods["add_liquidity"]
        .args([{"amount_in": amount, "min_lp_amount_out": 0}])
        .accounts(accounts)
        .remaining_accounts(await x.client.pool_remaining_accounts(POOL))
        .signers([owner])
    )


# ---- init: PDAs through system CPI --------------------------------------------------------------


async def test_init_creates_the_perpool_and_multisig_pdas(
    program: Program, program_net: LocalnetProcess
) -> None:
    conn = conn_of(program)
    admin = payer_of(program).pubkey()
    for key in (pda.perpool(), pda.multisig()):
        assert (await conn.get_account_info(key, Confirmed)).value is None

    async with LocalnetRpc(program_net.url) as rpc:
        clock_before = (await rpc.get_clock()).unix_timestamp
        payer_before = await balance(conn, admin)
        signature = await init_builder(program).rpc()
        clock_after = (await rpc.get_clock()).unix_timestamp

    perpool = await program.account["Perpool"].fetch(pda.perpool())
    assert perpool.oracle_authority == admin
    assert list(perpool.pools) == []
    assert clock_before <= perpool.inception_time <= clock_after
    assert perpool.bump == Pubkey.find_program_address([b"perpool"], PROGRAM_ID)[1]
    assert (
        perpool.transfer_authority_bump
        == Pubkey.find_program_address([b"transfer_authority"], PROGRAM_ID)[1]
    )
    assert all(getattr(perpool.permissions, name) for name in all_permissions(True))

    multisig = await program.account["Multisig"].fetch(pda.multisig())
    assert (multisig.num_signers, multisig.min_signatures, multisig.num_signed) == (1, 1, 0)
    assert multisig.signers[0] == admin
    assert all(s == Pubkey.default() for s in multisig.signers[1:])
    assert bytes(multisig.instruction_hash) == bytes(32)
    assert multisig.bump == Pubkey.find_program_address([b"multisig"], PROGRAM_ID)[1]

    rent = 0
    for key, size in ((pda.perpool(), PERPOOL_SIZE), (pda.multisig(), MULTISIG_SIZE)):
        raw = (await conn.get_account_info(key, Confirmed)).value
        assert raw is not None
        assert raw.owner == PROGRAM_ID
        assert len(raw.data) == size
        expected_rent = (await conn.get_minimum_balance_for_rent_exemption(size)).value
        assert raw.lamports == expected_rent
        rent += expected_rent
    # The payer paid both accounts' rent through system-program CPIs, and one signature fee.
    assert await balance(conn, admin) == payer_before - rent - FEE_PER_SIGNATURE

    logs = await transaction_logs(conn, signature)
    assert logs[0] == f"Program {PROGRAM_ID} invoke [1]"
    assert "Program log: Instruction: Init" in logs  # Anchor's msg!
    assert logs.count(f"Program {SYSTEM_PROGRAM} invoke [2]") == 2
    assert logs[-1] == f"Program {PROGRAM_ID} success"
    assert any(line.startswith("Program data: ") for line in logs)
    [event] = parse_events(program, logs)
    assert (event.name, event.data.instruction, event.data.target) == (
        "AdminAction",
        "init",
        pda.perpool(),
    )


async def test_init_twice_is_rejected(program: Program) -> None:
    await ensure_init(program)
    conn = conn_of(program)
    before = [
        (await conn.get_account_info(k, Confirmed)).value for k in (pda.perpool(), pda.multisig())
    ]
    intruder = Keypair()
    await airdrop(conn, intruder.pubkey(), LAMPORTS_PER_SOL)
    for builder in (init_builder(program), init_builder(program, intruder)):
        # A system-program error (not one of ours): anchorpy passes the preflight failure through.
        with pytest.raises(RPCException) as excinfo:
            await builder.rpc()
        logs = preflight_logs(excinfo.value)
        assert any("already in use" in line for line in logs), logs
        assert any(line.startswith(f"Program {PROGRAM_ID} failed") for line in logs), logs
    after = [
        (await conn.get_account_info(k, Confirmed)).value for k in (pda.perpool(), pda.multisig())
    ]
    assert after == before


async def test_program_accounts_found_by_filters(program: Program) -> None:
    await ensure_init(program)
    conn = conn_of(program)
    resp = await conn.get_program_accounts(
        PROGRAM_ID,
        Confirmed,
        encoding="base64",
        filters=[
            MULTISIG_SIZE,
            MemcmpOpts(offset=0, bytes=b58encode(account_discriminator("Multisig"))),
        ],
    )
    assert [a.pubkey for a in resp.value] == [pda.multisig()]
    # anchorpy's own discriminator filter finds the single Perpool account.
    assert [a.public_key for a in await program.account["Perpool"].all()] == [pda.perpool()]
    none = await conn.get_program_accounts(
        PROGRAM_ID, Confirmed, encoding="base64", filters=[MULTISIG_SIZE + 1]
    )
    assert none.value == []


# ---- add_liquidity: token CPIs into the SBF SPL Token program -----------------------------------


async def test_add_liquidity_moves_tokens_and_mints_lp(program: Program, x: Exchange) -> None:
    conn = conn_of(program)
    vault = pda.custody_token_account(pda.pool(POOL), x.sol.pubkey)
    before = (
        await token_amount(conn, x.alice_sol),
        await token_amount(conn, vault),
        await token_amount(conn, x.alice_lp),
    )
    signature = await (await add_liquidity_builder(program, x, x.sol.pubkey, 2 * SOL)).rpc()
    assert await token_amount(conn, x.alice_sol) == before[0] - 2 * SOL
    assert await token_amount(conn, vault) == before[1] + 2 * SOL
    # $200 of LP at $1 each, less the locked LP this first deposit of the pool pays for.
    assert await token_amount(conn, x.alice_lp) == before[2] + 199_000_000

    logs = await transaction_logs(conn, signature)
    assert "Program log: Instruction: AddLiquidity" in logs
    # The CPIs into the SBF SPL Token program are nested at depth 2.
    cpis = [i for i, line in enumerate(logs) if line == f"Program {TOKEN_PROGRAM} invoke [2]"]
    assert [logs[i + 1] for i in cpis] == [
        "Program log: Instruction: Transfer",
        "Program log: Instruction: MintTo",
    ]
    assert logs[-1] == f"Program {PROGRAM_ID} success"

    [event] = parse_events(program, logs)
    assert event.name == "LiquidityAdded"
    data = event.data
    assert (data.owner, data.amount_in, data.lp_amount, data.fee_amount) == (
        x.alice.pubkey(),
        2 * SOL,
        199_000_000,
        0,
    )
    assert data.custody == pda.custody(pda.pool(POOL), x.sol.pubkey)


async def test_simulate_shows_the_event_without_moving_tokens(
    program: Program, x: Exchange
) -> None:
    conn = conn_of(program)
    before = (await token_amount(conn, x.alice_usdc), await token_amount(conn, x.alice_lp))
    result = await (await add_liquidity_builder(program, x, x.usdc.pubkey, 5_000_000)).simulate()
    assert [e.name for e in result.events] == ["LiquidityAdded"]
    assert (result.events[0].data.amount_in, result.events[0].data.lp_amount) == (
        5_000_000,
        5_000_000,
    )
    assert "Program log: Instruction: AddLiquidity" in result.raw
    assert (await token_amount(conn, x.alice_usdc), await token_amount(conn, x.alice_lp)) == before


# ---- named errors -------------------------------------------------------------------------------

ANCHOR_BUILTIN = {
    2006: "ConstraintSeeds",
    3002: "AccountDiscriminatorMismatch",
    3007: "AccountOwnedByWrongProgram",
}


async def assert_named_error(
    program: Program,
    builder: MethodsBuilder,
    expected: str,
    accounts: list[Pubkey],
    *,
    caused_by: str | None = None,
) -> list[str]:
    """Send, expect the named program error with its logs, and check that no balance changed."""
    conn = conn_of(program)
    before = [await token_amount(conn, a) for a in accounts]
    payer_before = await balance(conn, payer_of(program).pubkey())
    with pytest.raises(ProgramError) as excinfo:
        await builder.rpc()
    err = excinfo.value
    names = error_names(program.idl) | ANCHOR_BUILTIN
    assert names.get(err.code) == expected, f"got code {err.code} ({err.msg})"
    logs = list(err.logs or [])
    assert any(f"Error Code: {expected}. Error Number: {err.code}." in line for line in logs), logs
    assert f"Program {PROGRAM_ID} failed: custom program error: {hex(err.code)}" in logs
    if caused_by:
        assert any(f"AnchorError caused by account: {caused_by}." in line for line in logs), logs
    assert [await token_amount(conn, a) for a in accounts] == before
    assert await balance(conn, payer_of(program).pubkey()) == payer_before
    return logs


async def test_funding_account_of_another_mint_is_invalid_token_account(
    program: Program, x: Exchange
) -> None:
    builder = await add_liquidity_builder(
        program, x, x.sol.pubkey, SOL, funding_account=x.alice_usdc
    )
    await assert_named_error(
        program,
        builder,
        "InvalidTokenAccount",
        [x.alice_sol, x.alice_usdc, x.alice_lp],
        caused_by="funding_account",
    )


async def test_fake_transfer_authority_fails_the_seeds_constraint(
    program: Program, x: Exchange
) -> None:
    builder = await add_liquidity_builder(
        program, x, x.usdc.pubkey, 1_000_000, transfer_authority=x.alice.pubkey()
    )
    await assert_named_error(
        program,
        builder,
        "ConstraintSeeds",
        [x.alice_usdc, x.alice_lp],
        caused_by="transfer_authority",
    )


async def test_multisig_in_place_of_perpool_is_a_discriminator_mismatch(
    program: Program, x: Exchange
) -> None:
    builder = await add_liquidity_builder(
        program, x, x.usdc.pubkey, 1_000_000, perpool=pda.multisig()
    )
    await assert_named_error(
        program,
        builder,
        "AccountDiscriminatorMismatch",
        [x.alice_usdc, x.alice_lp],
        caused_by="perpool",
    )


async def test_zero_amount_is_a_named_error(program: Program, x: Exchange) -> None:
    builder = await add_liquidity_builder(program, x, x.usdc.pubkey, 0)
    logs = await assert_named_error(program, builder, "ZeroAmount", [x.alice_usdc, x.alice_lp])
    assert any(
        "AnchorError thrown in programs/perpool/src/instructions/add_liquidity.rs" in line
        for line in logs
    ), logs


async def test_foreign_owner_cannot_move_tokens(program: Program, x: Exchange) -> None:
    conn = conn_of(program)
    bob = Keypair()
    await airdrop(conn, bob.pubkey(), LAMPORTS_PER_SOL)
    builder = await add_liquidity_builder(program, x, x.usdc.pubkey, 1_000_000, signer=bob)
    before = await token_amount(conn, x.alice_usdc)
    # The SPL Token program's own check (TokenError::OwnerMismatch = 4), raised inside the CPI;
    # not one of our errors, so anchorpy passes the preflight failure through.
    with pytest.raises(RPCException) as excinfo:
        await builder.rpc()
    logs = preflight_logs(excinfo.value)
    cpi = logs.index(f"Program {TOKEN_PROGRAM} invoke [2]")
    assert logs[cpi + 1 : cpi + 3] == [
        "Program log: Instruction: Transfer",
        "Program log: Error: owner does not match",
    ]
    assert logs[-1] == f"Program {PROGRAM_ID} failed: custom program error: 0x4"
    assert await token_amount(conn, x.alice_usdc) == before


# ---- the IDL matches the program source ---------------------------------------------------------


def rust_names(path: Path, pattern: str) -> list[str]:
    return re.findall(pattern, path.read_text(encoding="utf-8"))


async def test_idl_matches_program_surface() -> None:
    idl = load_idl()
    lib = (PROGRAM_SRC / "lib.rs").read_text(encoding="utf-8")
    program_mod = lib[lib.index("pub mod perpool") :]
    assert sorted(snake(ix.name) for ix in idl.instructions) == sorted(
        re.findall(r"pub fn (\w+)", program_mod)
    )
    variants = re.findall(
        r"^\s+(\w+),$",
        (PROGRAM_SRC / "error.rs")
        .read_text(encoding="utf-8")
        .split("pub enum PerpoolError")[1]
        .split("}")[0],
        re.M,
    )
    assert error_names(idl) == {6000 + i: name for i, name in enumerate(variants)}
    assert {acc.name for acc in idl.accounts} == {
        "Custody",
        "CustomOracle",
        "Multisig",
        "Perpool",
        "Pool",
        "Position",
    }
    events = rust_names(PROGRAM_SRC / "events.rs", r"#\[event\]\s*pub struct (\w+)")
    assert sorted(ev.name for ev in idl.events or []) == sorted(events)
