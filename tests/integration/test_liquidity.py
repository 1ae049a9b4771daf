"""Liquidity: the LP token's price, the add/remove views, slippage guards, round trips, donations,
locked tokens and the remaining-accounts list that values the pool.

One validator for the module; the first test sees the pool empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import PoolEnv, build_pool_env
from rejections import assert_rejected, assert_unchanged_failure, view_error_name
from solana.rpc.commitment import Confirmed
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from support import transaction_logs

from perpool import lp, pda, trade, views
from perpool.client import ViewError
from perpool.custody_config import custody_config
from perpool.localnet import LocalnetProcess
from perpool.math import pricing_supply
from perpool.program import parse_events
from perpool.trade import close_position_ix, open_position_ix

pytestmark = pytest.mark.asyncio(loop_scope="module")

SOL = 10**9
USDC = 10**6
USD = 10**6
LP = 10**6
BASE: dict[str, Any] = {"max_price_age_sec": 3_600}
# A flat 0.3% LP fee (min = max); the protocol share applies to trading fees, not to LP fees.
FEES: dict[str, Any] = {
    "liquidity_min_fee_bps": 30,
    "liquidity_max_fee_bps": 30,
    "protocol_share_bps": 2_500,
}
OTHER_POOL = "other"


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    built = await build_pool_env(net.url, net.faucet(), configs={"SOL": BASE, "USDC": BASE})
    yield built
    await built.client.close()


@dataclass
class Lper:
    wallet: Keypair
    sol: Pubkey
    usdc: Pubkey
    lp: Pubkey

    def accounts(self) -> list[Pubkey]:
        return [self.sol, self.usdc, self.lp]

    def token(self, symbol: str) -> Pubkey:
        return self.sol if symbol == "SOL" else self.usdc


async def new_lper(env: PoolEnv, sol: int = 100 * SOL, usdc: int = 10_000 * USDC) -> Lper:
    wallet = await env.new_wallet()
    return Lper(
        wallet,
        await env.fund(wallet.pubkey(), "SOL", sol),
        await env.fund(wallet.pubkey(), "USDC", usdc),
        await env.lp_account(wallet.pubkey()),
    )


async def add(env: PoolEnv, who: Lper, symbol: str, amount: int, min_out: int = 0) -> Signature:
    return await lp.add_liquidity(
        env.client,
        who.wallet,
        env.pool,
        env.mint(symbol),
        amount,
        funding_account=who.token(symbol),
        lp_token_account=who.lp,
        min_lp_amount_out=min_out,
    )


async def remove(
    env: PoolEnv, who: Lper, symbol: str, lp_amount: int, min_out: int = 0
) -> Signature:
    return await lp.remove_liquidity(
        env.client,
        who.wallet,
        env.pool,
        env.mint(symbol),
        lp_amount,
        receiving_account=who.token(symbol),
        lp_token_account=who.lp,
        min_amount_out=min_out,
    )


def value_e7(symbol: str, amount: int) -> int:
    """Exact value at the module's spot prices in units of $0.0000001: 1 lamport of SOL at $100,
    or a tenth of one USDC base unit."""
    return amount if symbol == "SOL" else amount * 10


async def aum(env: PoolEnv) -> Any:
    return await views.assets_under_management(env.client, env.pool)


def lp_price_not_lower(before: Any, after: Any) -> bool:
    """after.spot / after.supply >= before.spot / before.supply (exact cross-multiplication,
    supplies with the locked LP)."""
    old, new = pricing_supply(before.lp_supply), pricing_supply(after.lp_supply)
    return bool(after.spot_usd * old >= before.spot_usd * new)


async def ensure_depth(env: PoolEnv) -> None:
    """At least 50 SOL and 5,000 USDC of liquidity, so withdrawals in either token can be paid."""
    assets = {symbol: await custody_assets(env, symbol) for symbol in env.specs}
    if (
        assets["SOL"].owned - assets["SOL"].locked >= 50 * SOL
        and assets["USDC"].owned - assets["USDC"].locked >= 5_000 * USDC
    ):
        return
    whale = await new_lper(env)
    await add(env, whale, "SOL", 50 * SOL)
    await add(env, whale, "USDC", 5_000 * USDC)


async def vault(env: PoolEnv, symbol: str) -> int:
    return await env.balance(env.client.custody_keys(env.pool, env.mint(symbol)).token_account)


# ---- LP price and the views ---------------------------------------------------------------------


async def test_first_deposits_mint_one_lp_per_dollar(env: PoolEnv) -> None:
    """$1 per LP; the pool's first deposit pays for the locked LP (nobody holds it)."""
    client = env.client
    lp_mint = await AsyncToken(
        client.connection, pda.lp_token_mint(pda.pool(env.pool)), TOKEN_PROGRAM_ID, env.admin
    ).get_mint_info()
    assert (lp_mint.decimals, lp_mint.supply) == (6, 0)
    start = await aum(env)
    assert (start.spot_usd, start.lp_supply, start.lp_price_usd) == (0, 0, USD)

    who = await new_lper(env)
    sig = await add(env, who, "USDC", 250 * USDC)
    assert await env.balance(who.lp) == 249 * LP
    await add(env, who, "SOL", 2 * SOL)
    assert await env.balance(who.lp) == 449 * LP  # 2 SOL at $100 = $200 = 200 LP
    after = await aum(env)
    assert (after.spot_usd, after.high_usd, after.low_usd, after.lp_supply, after.lp_price_usd) == (
        450 * USD,
        450 * USD,
        450 * USD,
        449 * LP,
        USD,
    )

    [event] = parse_events(client.program, await transaction_logs(client.connection, sig))
    assert event.name == "LiquidityAdded"
    data = event.data
    assert (data.owner, data.amount_in, data.fee_amount, data.lp_amount, data.aum_usd) == (
        who.wallet.pubkey(),
        250 * USDC,
        0,
        249 * LP,
        250 * USD,
    )
    assert data.custody == client.custody_keys(env.pool, env.mint("USDC")).custody


async def custody_assets(env: PoolEnv, symbol: str) -> Any:
    return (await env.custody(symbol)).assets


@pytest.mark.parametrize("symbol", ["SOL", "USDC"])
async def test_add_and_remove_equal_the_views(env: PoolEnv, symbol: str) -> None:
    """With fees, a protocol share and spot != EMA, the instructions move exactly what the
    views quote, and the whole LP fee stays with the LPs."""
    client = env.client
    mint = env.mint(symbol)
    await env.configure(symbol, **(BASE | FEES))
    spec = env.specs[symbol]
    await env.set_price(
        symbol, spec.price * 101 // 100, ema=spec.price * 99 // 100, conf=spec.price // 1_000
    )
    try:
        who = await new_lper(env)
        amount = 37 * 10 ** env.specs[symbol].decimals + 12_345
        quote = await views.add_liquidity_amount_and_fee(client, env.pool, mint, amount)
        assert quote.fee_amount == -(-amount * 30 // 10_000)  # fee rounded up
        funding, vault_before, assets = (
            await env.balance(who.token(symbol)),
            await vault(env, symbol),
            await custody_assets(env, symbol),
        )
        sig = await add(env, who, symbol, amount)
        assert await env.balance(who.lp) == quote.lp_amount
        assert await env.balance(who.token(symbol)) == funding - amount
        assert await vault(env, symbol) == vault_before + amount
        after = await custody_assets(env, symbol)
        assert after.owned == assets.owned + amount
        assert after.protocol_fees == assets.protocol_fees
        [event] = parse_events(client.program, await transaction_logs(client.connection, sig))
        assert (event.data.lp_amount, event.data.fee_amount) == (quote.lp_amount, quote.fee_amount)

        lp_in = quote.lp_amount // 3
        rquote = await views.remove_liquidity_amount_and_fee(client, env.pool, mint, lp_in)
        assert rquote.fee_amount > 0
        receiving, vault_before, assets = (
            await env.balance(who.token(symbol)),
            await vault(env, symbol),
            after,
        )
        supply_before = (await aum(env)).lp_supply
        sig = await remove(env, who, symbol, lp_in)
        assert await env.balance(who.token(symbol)) == receiving + rquote.amount_out
        assert await env.balance(who.lp) == quote.lp_amount - lp_in
        assert (await aum(env)).lp_supply == supply_before - lp_in
        assert await vault(env, symbol) == vault_before - rquote.amount_out
        after = await custody_assets(env, symbol)
        assert after.owned == assets.owned - rquote.amount_out
        assert after.protocol_fees == assets.protocol_fees
        [event] = parse_events(client.program, await transaction_logs(client.connection, sig))
        assert event.name == "LiquidityRemoved"
        assert (event.data.lp_amount, event.data.amount_out, event.data.fee_amount) == (
            lp_in,
            rquote.amount_out,
            rquote.fee_amount,
        )
    finally:
        await env.configure(symbol, **BASE)
        await env.set_price(symbol, spec.price)


async def test_min_out_guards(env: PoolEnv) -> None:
    client = env.client
    who = await new_lper(env)
    usdc = env.mint("USDC")
    quote = await views.add_liquidity_amount_and_fee(client, env.pool, usdc, 100 * USDC)
    ix = await lp.add_liquidity_ix(
        client,
        who.wallet.pubkey(),
        env.pool,
        usdc,
        100 * USDC,
        funding_account=who.usdc,
        lp_token_account=who.lp,
        min_lp_amount_out=quote.lp_amount + 1,
    )
    await assert_rejected(
        client, [ix], [who.wallet], error="SlippageExceeded", watch=who.accounts()
    )
    await add(env, who, "USDC", 100 * USDC, min_out=quote.lp_amount)
    assert await env.balance(who.lp) == quote.lp_amount

    rquote = await views.remove_liquidity_amount_and_fee(client, env.pool, usdc, quote.lp_amount)
    ix = await lp.remove_liquidity_ix(
        client,
        who.wallet.pubkey(),
        env.pool,
        usdc,
        quote.lp_amount,
        receiving_account=who.usdc,
        lp_token_account=who.lp,
        min_amount_out=rquote.amount_out + 1,
    )
    await assert_rejected(
        client, [ix], [who.wallet], error="SlippageExceeded", watch=who.accounts()
    )
    await remove(env, who, "USDC", quote.lp_amount, min_out=rquote.amount_out)
    assert await env.balance(who.lp) == 0


async def test_zero_and_dust_deposits_are_rejected(env: PoolEnv) -> None:
    who = await new_lper(env)
    for symbol, amount in (
        ("USDC", 0),
        ("SOL", 0),
        ("SOL", 1),
    ):  # 1 lamport is worth less than $0.000001
        ix = await lp.add_liquidity_ix(
            env.client,
            who.wallet.pubkey(),
            env.pool,
            env.mint(symbol),
            amount,
            funding_account=who.token(symbol),
            lp_token_account=who.lp,
        )
        await assert_rejected(
            env.client, [ix], [who.wallet], error="ZeroAmount", watch=who.accounts()
        )
    ix = await lp.remove_liquidity_ix(
        env.client,
        who.wallet.pubkey(),
        env.pool,
        env.mint("USDC"),
        0,
        receiving_account=who.usdc,
        lp_token_account=who.lp,
    )
    await assert_rejected(env.client, [ix], [who.wallet], error="ZeroAmount", watch=who.accounts())


# ---- round trips --------------------------------------------------------------------------------

ROUND_TRIPS = [
    pytest.param("SOL", "SOL", 1_000, {}, id="SOL dust"),
    pytest.param("SOL", "SOL", 3 * SOL + 1, {}, id="SOL"),
    pytest.param("USDC", "USDC", 2, {}, id="USDC two units"),
    pytest.param("USDC", "USDC", 777_777_777, {}, id="USDC"),
    pytest.param("SOL", "USDC", 5 * SOL + 3, {}, id="SOL in, USDC out"),
    pytest.param("USDC", "SOL", 1_234 * USDC + 5, {}, id="USDC in, SOL out"),
    pytest.param("SOL", "SOL", 3 * SOL + 1, {"fees": True}, id="SOL with fees"),
    pytest.param("USDC", "SOL", 1_234 * USDC + 5, {"fees": True}, id="USDC in, SOL out, with fees"),
    pytest.param(
        "SOL", "SOL", 3 * SOL + 1, {"ema": 97_00, "conf": 50}, id="SOL with EMA below spot"
    ),
    pytest.param(
        "SOL",
        "USDC",
        3 * SOL + 1,
        {"ema": 103_00, "fees": True},
        id="SOL in, USDC out, EMA above spot, fees",
    ),
]


@pytest.mark.parametrize(("symbol_in", "symbol_out", "amount", "setup"), ROUND_TRIPS)
async def test_lp_round_trip_at_constant_price_never_gains(
    env: PoolEnv, symbol_in: str, symbol_out: str, amount: int, setup: dict[str, Any]
) -> None:
    if setup.get("fees"):
        await env.configure("SOL", **(BASE | FEES))
        await env.configure("USDC", **(BASE | FEES))
    if "ema" in setup:
        await env.set_price("SOL", 100_00, ema=setup["ema"], conf=setup.get("conf", 0))
    try:
        await ensure_depth(env)
        who = await new_lper(env)
        before = await aum(env)
        value_in = value_e7(symbol_in, amount)
        held_in = await env.balance(who.token(symbol_in))
        held_out = await env.balance(who.token(symbol_out))
        await add(env, who, symbol_in, amount)
        minted = await env.balance(who.lp)
        assert minted * before.spot_usd * 10 <= value_in * pricing_supply(
            before.lp_supply
        )  # never more LP than the deposit is worth
        await remove(env, who, symbol_out, minted)
        got = await env.balance(who.token(symbol_out)) - (
            held_out if symbol_in != symbol_out else held_in - amount
        )
        value_out = value_e7(symbol_out, got)
        assert value_out <= value_in, f"round trip gained: {value_in} -> {value_out}"
        if setup.get("fees"):
            assert value_out < value_in
        assert lp_price_not_lower(before, await aum(env))
    finally:
        if setup.get("fees"):
            await env.configure("SOL", **BASE)
            await env.configure("USDC", **BASE)
        if "ema" in setup:
            await env.set_price("SOL", 100_00)


async def test_many_small_round_trips_do_not_drain_the_pool(env: PoolEnv) -> None:
    who = await new_lper(env, sol=SOL)
    before = await aum(env)
    start = await env.balance(who.sol)
    for amount in (SOL // 7, SOL // 3 + 1, 12_345_678, 999):
        held = await env.balance(who.lp)
        await add(env, who, "SOL", amount)
        await remove(env, who, "SOL", await env.balance(who.lp) - held)
    assert await env.balance(who.sol) <= start
    assert lp_price_not_lower(before, await aum(env))


# ---- donations ----------------------------------------------------------------------------------


async def donate(env: PoolEnv, pool_name: str, symbol: str, amount: int) -> None:
    vault_key = env.client.custody_keys(pool_name, env.mint(symbol)).token_account
    sig = (await env.mints[symbol].mint_to(vault_key, env.admin, amount)).value
    await env.client.connection.confirm_transaction(sig, Confirmed, sleep_seconds=0.05)


async def test_donation_to_a_vault_does_not_move_the_lp_price(env: PoolEnv) -> None:
    client = env.client
    before = await aum(env)
    quote = await views.add_liquidity_amount_and_fee(client, env.pool, env.mint("USDC"), 100 * USDC)
    owned = (await custody_assets(env, "SOL")).owned
    vault_before = await vault(env, "SOL")
    await donate(env, env.pool, "SOL", 50 * SOL)
    assert await vault(env, "SOL") == vault_before + 50 * SOL
    after = await aum(env)
    assert (after.spot_usd, after.high_usd, after.low_usd, after.lp_supply, after.lp_price_usd) == (
        before.spot_usd,
        before.high_usd,
        before.low_usd,
        before.lp_supply,
        before.lp_price_usd,
    )
    assert (await custody_assets(env, "SOL")).owned == owned
    again = await views.add_liquidity_amount_and_fee(client, env.pool, env.mint("USDC"), 100 * USDC)
    assert (again.lp_amount, again.fee_amount, again.aum_usd) == (
        quote.lp_amount,
        quote.fee_amount,
        quote.aum_usd,
    )


async def add_pool_with_custodies(env: PoolEnv, name: str) -> None:
    client = env.client
    await client.add_pool(name, env.admin)
    for symbol, spec in env.specs.items():
        mint = env.mint(symbol)
        config = custody_config(
            client.custody_keys(name, mint).oracle, client_types=client.program.type, **BASE
        )
        await client.add_custody(name, mint, spec.stable, config, env.admin)
        await client.set_price(
            name,
            mint,
            env.admin,
            price=spec.price,
            expo=spec.expo,
            conf=0,
            ema=spec.price,
            publish_time=await env.now(),
        )


async def test_donation_before_the_first_deposit_does_not_inflate_the_lp_price(
    env: PoolEnv,
) -> None:
    """The first-depositor attack: a donation to an empty pool's vault changes nothing."""
    client = env.client
    name = "fresh"
    await add_pool_with_custodies(env, name)
    await donate(env, name, "USDC", 1_000_000 * USDC)
    lp_mint = AsyncToken(
        client.connection, pda.lp_token_mint(pda.pool(name)), TOKEN_PROGRAM_ID, env.admin
    )
    rates = []
    for _ in range(2):
        wallet = await env.new_wallet()
        usdc = await env.fund(wallet.pubkey(), "USDC", 100 * USDC)
        lp_account = await lp_mint.create_associated_token_account(wallet.pubkey())
        await lp.add_liquidity(
            client,
            wallet,
            name,
            env.mint("USDC"),
            100 * USDC,
            funding_account=usdc,
            lp_token_account=lp_account,
        )
        rates.append(
            int(
                (
                    await client.connection.get_token_account_balance(lp_account, Confirmed)
                ).value.amount
            )
        )
    # $1 per LP for both; the first paid for the locked LP.
    assert rates == [99 * LP, 100 * LP]
    view = await views.assets_under_management(client, name)
    assert (view.spot_usd, view.lp_supply, view.lp_price_usd) == (200 * USD, 199 * LP, USD)


# ---- locked tokens ------------------------------------------------------------------------------


async def test_locked_tokens_cannot_be_withdrawn(env: PoolEnv) -> None:
    client = env.client
    sol = env.mint("SOL")
    provider = await new_lper(env)
    await add(env, provider, "SOL", 10 * SOL)
    trader = await env.new_wallet()
    trader_sol = await env.fund(trader.pubkey(), "SOL", 10 * SOL)
    market = trade.Market.long(env.pool, sol)
    assets = await custody_assets(env, "SOL")
    # Lock all but 2 SOL: a long locks only what it borrows (size - collateral), so on $1000 of
    # collateral (10 SOL at $100) the size is $1000 + (available - 2 SOL) x $100.
    size = 1_000 * USD + (assets.owned - assets.locked - 2 * SOL) // 10
    assert size <= 100 * 1_000 * USD
    await client.send(
        [
            open_position_ix(
                client,
                trader.pubkey(),
                market,
                collateral_amount=10 * SOL,
                size_usd=size,
                funding_account=trader_sol,
            )
        ],
        [trader],
    )
    try:
        assets = await custody_assets(env, "SOL")
        available = assets.owned - assets.locked
        assert 2 * SOL - 10 <= available <= 2 * SOL + 10
        too_much = available // 10 + USD  # LP worth $1 more than the unlocked SOL, at $1 per LP
        with pytest.raises(ViewError) as excinfo:
            await views.remove_liquidity_amount_and_fee(client, env.pool, sol, too_much)
        assert view_error_name(excinfo.value) == "InsufficientLiquidity"
        ix = await lp.remove_liquidity_ix(
            client,
            provider.wallet.pubkey(),
            env.pool,
            sol,
            too_much,
            receiving_account=provider.sol,
            lp_token_account=provider.lp,
        )
        await assert_rejected(
            client,
            [ix],
            [provider.wallet],
            error="InsufficientLiquidity",
            watch=provider.accounts(),
        )
        # What is unlocked can go, and so can the other custody's tokens.
        await remove(env, provider, "SOL", available // 20)
        await remove(env, provider, "USDC", 500 * LP)
        assets = await custody_assets(env, "SOL")
        assert assets.locked <= assets.owned
    finally:
        await client.send(
            [close_position_ix(client, trader.pubkey(), market, receiving_account=trader_sol)],
            [trader],
        )


# ---- accounts -----------------------------------------------------------------------------------


def meta(key: Pubkey) -> AccountMeta:
    return AccountMeta(key, is_signer=False, is_writable=False)


async def remaining_variants(env: PoolEnv) -> dict[str, list[AccountMeta]]:
    client = env.client
    if (await client.connection.get_account_info(pda.pool(OTHER_POOL), Confirmed)).value is None:
        await add_pool_with_custodies(env, OTHER_POOL)
    good = await client.pool_remaining_accounts(env.pool)
    n = len(good) // 2
    custodies, oracles = good[:n], good[n:]
    foreign = client.custody_keys(OTHER_POOL, env.mint("SOL"))
    return {
        "none": [],
        "missing oracle": good[:-1],
        "missing custody": [*custodies[1:], *oracles[1:]],
        "custodies out of order": [*custodies[::-1], *oracles[::-1]],
        "oracles out of order": [*custodies, *oracles[::-1]],
        "interleaved": [custodies[0], oracles[0], custodies[1], oracles[1]],
        "duplicated custody": [custodies[0], custodies[0], oracles[0], oracles[0]],
        "foreign custody": [
            meta(foreign.custody),
            *custodies[1:],
            meta(foreign.oracle),
            *oracles[1:],
        ],
        "foreign oracle": [*custodies, meta(foreign.oracle), *oracles[1:]],
        "pool instead of custody": [meta(pda.pool(env.pool)), *custodies[1:], *oracles],
        "extra account": [*good, meta(pda.perpool())],
    }


VARIANTS = [
    "none",
    "missing oracle",
    "missing custody",
    "custodies out of order",
    "oracles out of order",
    "interleaved",
    "duplicated custody",
    "foreign custody",
    "foreign oracle",
    "pool instead of custody",
    "extra account",
]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_remaining_accounts_must_be_every_custody_then_oracle_in_pool_order(
    env: PoolEnv, variant: str
) -> None:
    client = env.client
    remaining = (await remaining_variants(env))[variant]
    who = await new_lper(env)
    await add(env, who, "USDC", 10 * USDC)
    usdc = env.mint("USDC")
    adds = await lp.add_liquidity_ix(
        client,
        who.wallet.pubkey(),
        env.pool,
        usdc,
        USDC,
        funding_account=who.usdc,
        lp_token_account=who.lp,
    )
    removes = await lp.remove_liquidity_ix(
        client,
        who.wallet.pubkey(),
        env.pool,
        usdc,
        LP,
        receiving_account=who.usdc,
        lp_token_account=who.lp,
    )
    for ix in (adds, removes):
        bad = Instruction(
            ix.program_id, ix.data, [*ix.accounts[: len(ix.accounts) - 4], *remaining]
        )
        await assert_rejected(
            client, [bad], [who.wallet], error="InvalidRemainingAccounts", watch=who.accounts()
        )
    pool_key = pda.pool(env.pool)
    accounts = {
        "perpool": pda.perpool(),
        "pool": pool_key,
        "lp_token_mint": pda.lp_token_mint(pool_key),
    }
    with pytest.raises(ViewError) as excinfo:
        await client.view("get_assets_under_management", accounts=accounts, remaining=remaining)
    assert view_error_name(excinfo.value) == "InvalidRemainingAccounts"


async def test_substituted_accounts_are_rejected(env: PoolEnv) -> None:
    client = env.client
    who = await new_lper(env)
    await add(env, who, "USDC", 10 * USDC)
    sol, usdc = env.mint("SOL"), env.mint("USDC")
    base = await lp.add_liquidity_ix(
        client,
        who.wallet.pubkey(),
        env.pool,
        usdc,
        USDC,
        funding_account=who.usdc,
        lp_token_account=who.lp,
    )
    keys = [m.pubkey for m in base.accounts]

    def replaced(ix: Instruction, old: Pubkey, new: Pubkey) -> Instruction:
        return Instruction(
            ix.program_id,
            ix.data,
            [
                AccountMeta(new, m.is_signer, m.is_writable) if m.pubkey == old and i < 10 else m
                for i, m in enumerate(ix.accounts)
            ],
        )

    usdc_keys = client.custody_keys(env.pool, usdc)
    sol_keys = client.custody_keys(env.pool, sol)
    assert keys[6] == usdc_keys.custody
    cases = [
        (
            replaced(base, who.usdc, who.sol),
            "InvalidTokenAccount",
        ),  # funding account of another mint
        (replaced(base, who.lp, who.usdc), "InvalidTokenAccount"),  # not an LP token account
        (
            replaced(base, usdc_keys.oracle, sol_keys.oracle),
            "InvalidOracleAccount",
        ),  # another custody's oracle
        (
            replaced(base, usdc_keys.token_account, sol_keys.token_account),
            "InvalidTokenAccount",
        ),  # another vault
    ]
    for ix, error in cases:
        await assert_rejected(
            client, [ix], [who.wallet], error=error, watch=[*who.accounts(), sol_keys.token_account]
        )
    # A custody of another pool with its own vault: the seeds tie the custody to the pool.
    if (await client.connection.get_account_info(pda.pool(OTHER_POOL), Confirmed)).value is None:
        await add_pool_with_custodies(env, OTHER_POOL)
    foreign = client.custody_keys(OTHER_POOL, usdc)
    ix = replaced(
        replaced(
            replaced(base, usdc_keys.custody, foreign.custody), usdc_keys.oracle, foreign.oracle
        ),
        usdc_keys.token_account,
        foreign.token_account,
    )
    failure = await assert_unchanged_failure(client, [ix], [who.wallet], watch=who.accounts())
    assert failure.name in ("ConstraintHasOne", "ConstraintSeeds"), failure.logs
    # Burning someone else's LP tokens: the token program refuses (the owner did not sign).
    victim = await new_lper(env)
    await add(env, victim, "USDC", 10 * USDC)
    theft = await lp.remove_liquidity_ix(
        client,
        who.wallet.pubkey(),
        env.pool,
        usdc,
        LP,
        receiving_account=who.usdc,
        lp_token_account=victim.lp,
    )
    failure = await assert_unchanged_failure(
        client, [theft], [who.wallet], watch=[*who.accounts(), *victim.accounts()]
    )
    assert any("owner does not match" in line.lower() for line in failure.logs), failure.logs


async def test_unsigned_owner_and_fake_token_program_are_rejected(env: PoolEnv) -> None:
    client = env.client
    who = await new_lper(env)
    await add(env, who, "USDC", 10 * USDC)
    usdc = env.mint("USDC")
    adds = await lp.add_liquidity_ix(
        client,
        who.wallet.pubkey(),
        env.pool,
        usdc,
        USDC,
        funding_account=who.usdc,
        lp_token_account=who.lp,
    )
    removes = await lp.remove_liquidity_ix(
        client,
        who.wallet.pubkey(),
        env.pool,
        usdc,
        LP,
        receiving_account=who.usdc,
        lp_token_account=who.lp,
    )
    fake_token_program = Keypair().pubkey()
    for ix in (adds, removes):
        unsigned = Instruction(
            ix.program_id,
            ix.data,
            [
                AccountMeta(m.pubkey, False, m.is_writable) if m.is_signer else m
                for m in ix.accounts
            ],
        )
        await assert_rejected(client, [unsigned], error="AccountNotSigner", watch=who.accounts())
        fake = Instruction(
            ix.program_id,
            ix.data,
            [
                AccountMeta(fake_token_program, False, False) if m.pubkey == TOKEN_PROGRAM_ID else m
                for m in ix.accounts
            ],
        )
        await assert_rejected(
            client, [fake], [who.wallet], error="InvalidProgramId", watch=who.accounts()
        )


async def test_deposit_beyond_the_max_ratio_is_rejected(env: PoolEnv) -> None:
    client = env.client
    who = await new_lper(env)
    view = await aum(env)
    sol_value = (await custody_assets(env, "SOL")).owned // 10
    share = sol_value * 10_000 // view.spot_usd
    await env.configure("SOL", **(BASE | {"target_bps": min(share, 5_000), "max_bps": share + 100}))
    try:
        # A deposit worth 10% of the pool pushes SOL above its max share; a tiny one does not.
        amount = view.spot_usd * 10 // 100 * 10
        ix = await lp.add_liquidity_ix(
            client,
            who.wallet.pubkey(),
            env.pool,
            env.mint("SOL"),
            amount,
            funding_account=who.sol,
            lp_token_account=who.lp,
        )
        await assert_rejected(
            client, [ix], [who.wallet], error="TokenRatioOutOfBounds", watch=who.accounts()
        )
        await add(env, who, "SOL", SOL // 100)
    finally:
        await env.configure("SOL", **BASE)
