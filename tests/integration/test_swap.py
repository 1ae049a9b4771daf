"""Swaps between pool tokens: amounts equal the view, A→A rejected, min-out guard, no gain from
A→B→A, and the failure modes around them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import PoolEnv, build_pool_env
from rejections import assert_rejected, view_error_name
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from support import transaction_logs

from perpool import lp, views
from perpool.client import ViewError
from perpool.localnet import LocalnetProcess
from perpool.program import parse_events
from perpool.trade import swap_ix

pytestmark = pytest.mark.asyncio(loop_scope="module")

SOL = 10**9
USDC = 10**6
BASE: dict[str, Any] = {"max_price_age_sec": 3_600}
FEES: dict[str, Any] = {"swap_bps": 25, "protocol_share_bps": 4_000}


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    built = await build_pool_env(net.url, net.faucet(), configs={"SOL": BASE, "USDC": BASE})
    provider = await built.new_wallet()
    lp_account = await built.lp_account(provider.pubkey())
    for symbol, amount in (("SOL", 100 * SOL), ("USDC", 10_000 * USDC)):
        funding = await built.fund(provider.pubkey(), symbol, amount)
        await lp.add_liquidity(
            built.client,
            provider,
            built.pool,
            built.mint(symbol),
            amount,
            funding_account=funding,
            lp_token_account=lp_account,
        )
    yield built
    await built.client.close()


@dataclass
class Swapper:
    wallet: Keypair
    accounts: dict[str, Pubkey]

    def watched(self) -> list[Pubkey]:
        return list(self.accounts.values())


async def new_swapper(env: PoolEnv, sol: int = 20 * SOL, usdc: int = 2_000 * USDC) -> Swapper:
    wallet = await env.new_wallet()
    return Swapper(
        wallet,
        {
            "SOL": await env.fund(wallet.pubkey(), "SOL", sol),
            "USDC": await env.fund(wallet.pubkey(), "USDC", usdc),
        },
    )


def build(
    env: PoolEnv, who: Swapper, symbol_in: str, symbol_out: str, amount: int, min_out: int = 0
) -> Instruction:
    return swap_ix(
        env.client,
        who.wallet.pubkey(),
        env.pool,
        env.mint(symbol_in),
        env.mint(symbol_out),
        amount,
        funding_account=who.accounts[symbol_in],
        receiving_account=who.accounts[symbol_out],
        min_amount_out=min_out,
    )


async def quote(env: PoolEnv, symbol_in: str, symbol_out: str, amount: int) -> Any:
    return await views.swap_amount_and_fees(
        env.client, env.pool, env.mint(symbol_in), env.mint(symbol_out), amount
    )


async def swap(
    env: PoolEnv, who: Swapper, symbol_in: str, symbol_out: str, amount: int, min_out: int = 0
) -> Any:
    sig = await env.client.send(
        [build(env, who, symbol_in, symbol_out, amount, min_out)], [who.wallet]
    )
    return sig


async def vault(env: PoolEnv, symbol: str) -> int:
    return await env.balance(env.client.custody_keys(env.pool, env.mint(symbol)).token_account)


async def assets(env: PoolEnv, symbol: str) -> Any:
    return (await env.custody(symbol)).assets


@pytest.mark.parametrize(
    ("symbol_in", "symbol_out", "amount", "fees", "sol_price"),
    [
        pytest.param("USDC", "SOL", 250 * USDC + 1, False, {}, id="USDC to SOL"),
        pytest.param("SOL", "USDC", 3 * SOL + 7, False, {}, id="SOL to USDC"),
        pytest.param("USDC", "SOL", 250 * USDC + 1, True, {}, id="USDC to SOL, fees"),
        pytest.param(
            "SOL",
            "USDC",
            3 * SOL + 7,
            True,
            {"price": 101_37, "ema": 99_50, "conf": 20},
            id="SOL to USDC, fees, EMA below spot",
        ),
        pytest.param(
            "USDC",
            "SOL",
            999 * USDC,
            True,
            {"price": 99_50, "ema": 101_37},
            id="USDC to SOL, fees, EMA above spot",
        ),
    ],
)
async def test_swap_moves_exactly_what_the_view_quotes(
    env: PoolEnv,
    symbol_in: str,
    symbol_out: str,
    amount: int,
    fees: bool,
    sol_price: dict[str, int],
) -> None:
    client = env.client
    if fees:
        await env.configure(symbol_out, **(BASE | FEES))
    if sol_price:
        await env.set_price(
            "SOL", sol_price["price"], ema=sol_price["ema"], conf=sol_price.get("conf", 0)
        )
    try:
        who = await new_swapper(env)
        q = await quote(env, symbol_in, symbol_out, amount)
        assert q.amount_out > 0
        assert (q.fee_amount > 0) == fees
        held = {s: await env.balance(a) for s, a in who.accounts.items()}
        vaults = {s: await vault(env, s) for s in (symbol_in, symbol_out)}
        before = {s: await assets(env, s) for s in (symbol_in, symbol_out)}
        sig = await swap(env, who, symbol_in, symbol_out, amount)
        protocol = q.fee_amount * FEES["protocol_share_bps"] // 10_000 if fees else 0
        assert await env.balance(who.accounts[symbol_in]) == held[symbol_in] - amount
        assert await env.balance(who.accounts[symbol_out]) == held[symbol_out] + q.amount_out
        assert await vault(env, symbol_in) == vaults[symbol_in] + amount
        assert await vault(env, symbol_out) == vaults[symbol_out] - q.amount_out
        after = {s: await assets(env, s) for s in (symbol_in, symbol_out)}
        assert after[symbol_in].owned == before[symbol_in].owned + amount
        assert after[symbol_out].owned == before[symbol_out].owned - q.amount_out - protocol
        assert after[symbol_out].protocol_fees == before[symbol_out].protocol_fees + protocol
        [event] = parse_events(client.program, await transaction_logs(client.connection, sig))
        assert event.name == "Swapped"
        assert (event.data.amount_in, event.data.amount_out, event.data.fee_amount) == (
            amount,
            q.amount_out,
            q.fee_amount,
        )
        assert event.data.custody_in == client.custody_keys(env.pool, env.mint(symbol_in)).custody
    finally:
        if fees:
            await env.configure(symbol_out, **BASE)
        if sol_price:
            await env.set_price("SOL", 100_00)


async def test_swap_into_the_same_custody_is_rejected(env: PoolEnv) -> None:
    who = await new_swapper(env)
    for symbol in ("SOL", "USDC"):
        with pytest.raises(ViewError) as excinfo:
            await quote(env, symbol, symbol, 10 ** env.specs[symbol].decimals)
        assert view_error_name(excinfo.value) == "SameCustody"
        ix = build(env, who, symbol, symbol, 10 ** env.specs[symbol].decimals)
        await assert_rejected(
            env.client, [ix], [who.wallet], error="SameCustody", watch=who.watched()
        )


async def test_min_out_guard(env: PoolEnv) -> None:
    who = await new_swapper(env)
    q = await quote(env, "USDC", "SOL", 123 * USDC)
    ix = build(env, who, "USDC", "SOL", 123 * USDC, min_out=q.amount_out + 1)
    await assert_rejected(
        env.client, [ix], [who.wallet], error="SlippageExceeded", watch=who.watched()
    )
    sol_before = await env.balance(who.accounts["SOL"])
    await swap(env, who, "USDC", "SOL", 123 * USDC, min_out=q.amount_out)
    assert await env.balance(who.accounts["SOL"]) == sol_before + q.amount_out


@pytest.mark.parametrize(
    ("first", "amount", "fees", "sol_price"),
    [
        pytest.param("USDC", 1, False, {}, id="one USDC unit"),
        pytest.param("USDC", 100 * USDC + 3, False, {}, id="USDC"),
        pytest.param("SOL", 9_999, False, {}, id="SOL dust"),
        pytest.param("SOL", 2 * SOL + 1, False, {}, id="SOL"),
        pytest.param("SOL", 2 * SOL + 1, True, {}, id="SOL with fees"),
        pytest.param(
            "USDC",
            777 * USDC,
            True,
            {"price": 100_37, "ema": 99_81, "conf": 5},
            id="USDC with fees, EMA below spot",
        ),
        pytest.param(
            "SOL",
            5 * SOL,
            False,
            {"price": 13_333_333_333, "ema": 13_333_333_334, "expo": -8},
            id="SOL at an awkward price",
        ),
    ],
)
async def test_a_to_b_to_a_never_gains(
    env: PoolEnv, first: str, amount: int, fees: bool, sol_price: dict[str, int]
) -> None:
    other = "SOL" if first == "USDC" else "USDC"
    if fees:
        for symbol in env.specs:
            await env.configure(symbol, **(BASE | FEES))
    if sol_price:
        await env.set_price(
            "SOL",
            sol_price["price"],
            ema=sol_price["ema"],
            conf=sol_price.get("conf", 0),
            expo=sol_price.get("expo"),
        )
    try:
        who = await new_swapper(env)
        start = {s: await env.balance(a) for s, a in who.accounts.items()}
        q1 = await quote(env, first, other, amount)
        await swap(env, who, first, other, amount)
        q2 = await quote(env, other, first, q1.amount_out)
        await swap(env, who, other, first, q1.amount_out)
        end = {s: await env.balance(a) for s, a in who.accounts.items()}
        assert end[other] == start[other]
        assert end[first] == start[first] - amount + q2.amount_out
        assert q2.amount_out <= amount, (
            f"A→B→A gained: {amount} -> {q1.amount_out} -> {q2.amount_out}"
        )
        if fees:
            assert q2.amount_out < amount
    finally:
        if fees:
            for symbol in env.specs:
                await env.configure(symbol, **BASE)
        if sol_price:
            await env.set_price("SOL", 100_00)


async def test_round_trip_too_small_to_pay_anything_is_rejected(env: PoolEnv) -> None:
    who = await new_swapper(env)
    # 1 USDC unit ($0.000001) buys 10 lamports; 9 lamports are worth less than one USDC unit.
    q = await quote(env, "USDC", "SOL", 1)
    assert q.amount_out == 10
    await assert_rejected(
        env.client,
        [build(env, who, "SOL", "USDC", 9)],
        [who.wallet],
        error="ZeroAmount",
        watch=who.watched(),
    )
    await assert_rejected(
        env.client,
        [build(env, who, "USDC", "SOL", 0)],
        [who.wallet],
        error="ZeroAmount",
        watch=who.watched(),
    )


async def test_swap_beyond_the_unlocked_tokens_is_rejected(env: PoolEnv) -> None:
    a = await assets(env, "SOL")
    available_usd = (a.owned - a.locked) // 10  # SOL at $100: 10 lamports per USD unit
    who = await new_swapper(env, usdc=available_usd + 10 * USDC)
    with pytest.raises(ViewError) as excinfo:
        await quote(env, "USDC", "SOL", available_usd + USDC)
    assert view_error_name(excinfo.value) == "InsufficientLiquidity"
    ix = build(env, who, "USDC", "SOL", available_usd + USDC)
    await assert_rejected(
        env.client, [ix], [who.wallet], error="InsufficientLiquidity", watch=who.watched()
    )


async def test_substituted_swap_accounts_are_rejected(env: PoolEnv) -> None:
    client = env.client
    who = await new_swapper(env)
    base = build(env, who, "USDC", "SOL", 10 * USDC)
    sol = client.custody_keys(env.pool, env.mint("SOL"))
    usdc = client.custody_keys(env.pool, env.mint("USDC"))

    def at(ix: Instruction, index: int, key: Pubkey) -> Instruction:
        metas = list(ix.accounts)
        metas[index] = AccountMeta(key, metas[index].is_signer, metas[index].is_writable)
        return Instruction(ix.program_id, ix.data, metas)

    names = [
        "owner",
        "funding_account",
        "receiving_account",
        "transfer_authority",
        "perpool",
        "pool",
        "receiving_custody",
        "receiving_custody_oracle",
        "receiving_custody_token_account",
        "dispensing_custody",
        "dispensing_custody_oracle",
        "dispensing_custody_token_account",
        "token_program",
    ]
    assert [m.pubkey for m in base.accounts][names.index("receiving_custody")] == usdc.custody
    idx = names.index
    cases = [
        (at(base, idx("funding_account"), who.accounts["SOL"]), "InvalidTokenAccount"),
        (at(base, idx("receiving_account"), who.accounts["USDC"]), "InvalidTokenAccount"),
        (at(base, idx("receiving_custody_oracle"), sol.oracle), "InvalidOracleAccount"),
        (at(base, idx("dispensing_custody_oracle"), usdc.oracle), "InvalidOracleAccount"),
        (
            at(base, idx("receiving_custody_token_account"), sol.token_account),
            "InvalidTokenAccount",
        ),
        (
            at(base, idx("dispensing_custody_token_account"), usdc.token_account),
            "InvalidTokenAccount",
        ),
    ]
    for ix, error in cases:
        await assert_rejected(
            client,
            [ix],
            [who.wallet],
            error=error,
            watch=[*who.watched(), sol.token_account, usdc.token_account],
        )


async def test_swap_needs_the_owners_signature(env: PoolEnv) -> None:
    who = await new_swapper(env)
    ix = build(env, who, "USDC", "SOL", 10 * USDC)
    unsigned = Instruction(
        ix.program_id,
        ix.data,
        [AccountMeta(m.pubkey, False, m.is_writable) if m.is_signer else m for m in ix.accounts],
    )
    await assert_rejected(env.client, [unsigned], error="AccountNotSigner", watch=who.watched())
