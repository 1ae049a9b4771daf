"""Class 16, first depositor / donation.

Tokens sent straight to a custody vault are not the LPs': the program values ``owned`` (its own
accounting), so a donation moves neither the LP price nor any quote, whichever token it is.
In an empty pool a donation cannot inflate the first LP token against the next depositor, the
smallest deposits are refused, and a configured minimum deposit is enforced to the unit.
The only LP of a pool cannot inflate the LP token against the next depositor otherwise either:
the first deposit pays for one locked LP (``LOCKED_LP_SUPPLY``) that counts in every price, so
shrinking the minted supply to one unit (withdrawing or burning the rest) leaves that unit
worth a millionth of the pool, and paying trading fees into a pool whose supply is a few units
needs a first deposit the program refuses.

Fairness is checked against exact rational values: an LP's share is worth its tokens x
(Σ owned x price) / (supply + locked LP), computed with ``Fraction`` from the custody accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
from adversarial_economics import (
    aum_view,
    custody_states,
    event_data,
    fresh_pool,
    lp_supply,
    new_trader,
    pool_value_exact,
    price_of,
    send,
    token_amounts,
    transfer_ix,
    usd_exact,
    vault,
)
from adversary import ETH, FEES, SOL, USD, USDC, USDT, Attack, World
from pool_env import PoolEnv, TokenSpec
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import BurnParams, burn
from trade_support import Trader, long_market

from perpool import lp, pda, trade, views
from perpool.client import ViewError
from perpool.math import LOCKED_LP_SUPPLY, pricing_supply

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(16)]

LP_UNIT = 1
ONE_LP = 10**6
DONATIONS = (
    ("SOL", 10 * SOL),
    ("ETH", ETH),
    ("USDC", 10_000 * USDC),
    ("USDT", 10_000 * USDT),
    ("ETHSQ", 5 * ETH),
)
STABLE = TokenSpec("USDC", 6, True, 1_000_000, -6)
# Empty pools: a token with an odd price and the stable it pairs with.
EMPTY_POOLS = {
    "SOL": (TokenSpec("SOL", 9, False, 123_456_789, -6), STABLE),
    "ETH": (TokenSpec("ETH", 8, False, 2_718_281_828, -6), TokenSpec("USDT", 6, True, 999_987, -6)),
    "XYZ": (TokenSpec("XYZ", 6, False, 337_013, -6), STABLE),
}
MIN_DEPOSIT_USD = 10 * USD


# ------------------------------------------------------------------------------------------
# Donations to the world's vaults
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolReading:
    """Everything an LP or trader is priced at, and the program's accounting."""

    aum: Any
    lp_price: int
    add_quotes: tuple[Any, ...]
    remove_quotes: tuple[Any, ...]
    assets: tuple[Any, ...]


async def reading(pool: PoolEnv, symbols: tuple[str, ...], deposit: dict[str, int]) -> PoolReading:
    client = pool.client
    adds, removes, assets = [], [], []
    for symbol in symbols:
        mint = pool.mint(symbol)
        adds.append(
            await views.add_liquidity_amount_and_fee(client, pool.pool, mint, deposit[symbol])
        )
        removes.append(await views.remove_liquidity_amount_and_fee(client, pool.pool, mint, ONE_LP))
    for symbol in pool.specs:
        c = await pool.custody(symbol)
        assets.append((symbol, c.assets, c.insurance))
    return PoolReading(
        await aum_view(pool),
        await views.lp_token_price(client, pool.pool),
        tuple(map(str, adds)),
        tuple(map(str, removes)),
        tuple(str(a) for a in assets),
    )


async def test_donations_to_each_vault_do_not_move_the_lp_price(
    world: World, attack: Attack
) -> None:
    env, me = world.env, world.attacker
    tokens = ("SOL", "ETH", "USDC", "USDT")
    deposit = {"SOL": SOL, "ETH": ETH // 10, "USDC": 100 * USDC, "USDT": 100 * USDT}
    baseline = await reading(env, tokens, deposit)
    redeem = await views.remove_liquidity_amount_and_fee(
        env.client, env.pool, env.mint("USDC"), 10 * ONE_LP
    )
    await env.fund(me.key, "ETHSQ", 5 * ETH)
    for symbol, amount in DONATIONS:
        target = vault(env, symbol)
        async with attack.holds(f"donate {amount} {symbol} units to the {symbol} vault"):
            (held,) = await token_amounts(env, [target])
            await send(env, [transfer_ix(me.accounts[symbol], target, me.key, amount)], me.wallet)
            assert await token_amounts(env, [target]) == [held + amount]
            after = await reading(env, tokens, deposit)
            assert after == baseline, f"{symbol} donation moved the pool's prices: {after}"

    async with attack.holds("update_pool_aum after the donations stores the undonated AUM"):
        await trade.update_pool_aum(env.client, env.pool)
        pool = await env.client.fetch("Pool", pda.pool(env.pool))
        assert pool.aum_usd == baseline.aum.spot_usd

    async with attack.holds("the donor redeems its LP tokens at the pre-donation quote"):
        (before,) = await token_amounts(env, [me.accounts["USDC"]])
        signature = await lp.remove_liquidity(
            env.client,
            me.wallet,
            env.pool,
            env.mint("USDC"),
            10 * ONE_LP,
            receiving_account=me.accounts["USDC"],
            lp_token_account=world.lp_accounts["attacker"],
        )
        (event,) = await event_data(env, signature, "LiquidityRemoved")
        assert (event.amount_out, event.fee_amount) == (redeem.amount_out, redeem.fee_amount)
        assert await token_amounts(env, [me.accounts["USDC"]]) == [before + redeem.amount_out]
        # Exactly its share of the undonated pool (valued low), before the fee.
        low, supply = baseline.aum.low_usd, pricing_supply(baseline.aum.lp_supply)
        assert redeem.withdraw_usd == 10 * ONE_LP * low // supply


# ------------------------------------------------------------------------------------------
# Empty pools: the first depositor
# ------------------------------------------------------------------------------------------

FAIR_ROUNDING_USD = 10_000
"""What rounding may cost an LP on one deposit: $0.01."""


def lp_share_value(lp_amount: int, pool_value: Fraction, supply: int) -> Fraction:
    """What ``lp_amount`` of a minted ``supply`` is worth (the locked LP counts)."""
    return lp_amount * pool_value / pricing_supply(supply)


async def exact_pool_value(pool: PoolEnv) -> tuple[Fraction, int]:
    """(Σ owned x price, LP supply): the exact value behind the LP token (no open positions)."""
    states = await custody_states(pool)
    prices = {s: pool.specs[s].price for s in pool.specs}
    return pool_value_exact(states, pool.specs, prices), await lp_supply(pool)


async def add_ix(
    pool: PoolEnv, trader: Trader, lp_account: Pubkey, symbol: str, amount: int
) -> Any:
    return await lp.add_liquidity_ix(
        pool.client,
        trader.key,
        pool.pool,
        pool.mint(symbol),
        amount,
        funding_account=trader.accounts[symbol],
        lp_token_account=lp_account,
    )


async def deposit(
    pool: PoolEnv, trader: Trader, lp_account: Pubkey, symbol: str, amount: int
) -> Any:
    signature = await send(
        pool, [await add_ix(pool, trader, lp_account, symbol, amount)], trader.wallet
    )
    (event,) = await event_data(pool, signature, "LiquidityAdded")
    return event


async def next_lp_loss(
    pool: PoolEnv, trader: Trader, lp_account: Pubkey, symbol: str, amount: int
) -> Fraction:
    """What a deposit of ``amount`` loses to rounding: its value net of the LP fee less what its
    LP tokens are worth right after (exact); also checks it never gains and the LP price does
    not fall for the others."""
    value_before, supply_before = await exact_pool_value(pool)
    event = await deposit(pool, trader, lp_account, symbol, amount)
    value_after, supply_after = await exact_pool_value(pool)
    price = price_of(pool.specs[symbol])
    share = lp_share_value(event.lp_amount, value_after, supply_after)
    assert share <= usd_exact(amount, pool.specs[symbol].decimals, price)
    assert value_after * pricing_supply(supply_before) >= value_before * pricing_supply(
        supply_after
    )
    return usd_exact(amount - event.fee_amount, pool.specs[symbol].decimals, price) - share


@pytest.mark.parametrize("symbol", list(EMPTY_POOLS))
async def test_first_deposit_after_a_donation_and_the_next_lp(
    world: World, attack: Attack, symbol: str
) -> None:
    token, stable = EMPTY_POOLS[symbol]
    configs = {token.symbol: FEES, stable.symbol: FEES}
    if symbol == "XYZ":
        configs = {s: FEES | {"min_liquidity_deposit_usd": MIN_DEPOSIT_USD} for s in configs}
    pool = await fresh_pool(world, f"empty-{symbol}", (token, stable), configs)
    price = price_of(token)
    whole = 10**token.decimals
    attacker = await new_trader(pool, **{symbol: 100_000 * whole, stable.symbol: 10**12})
    first = await new_trader(pool, **{symbol: 1_000 * whole})
    second = await new_trader(pool, **{stable.symbol: 10**12})
    lp_accounts = {t.key: await pool.lp_account(t.key) for t in (attacker, first, second)}
    watch = [*attacker.accounts.values(), *first.accounts.values(), *lp_accounts.values()]

    await attack.rejected(
        f"1 base unit as the first {symbol} deposit of an empty pool",
        [await add_ix(pool, attacker, lp_accounts[attacker.key], symbol, 1)],
        [attacker.wallet],
        error="DepositTooSmall",
        watch=watch,
        env=pool,
    )
    amount = 10 * whole + 7
    if symbol == "XYZ":
        # $10 to the unit: the largest amount worth less is refused, the next one accepted.
        amount = -(-MIN_DEPOSIT_USD * 10**6 // token.price)
        assert usd_exact(amount - 1, 6, price) < MIN_DEPOSIT_USD <= usd_exact(amount, 6, price)
        await attack.rejected(
            "first deposit one unit under the custody's minimum deposit",
            [await add_ix(pool, first, lp_accounts[first.key], symbol, amount - 1)],
            [first.wallet],
            error="DepositTooSmall",
            watch=watch,
            env=pool,
        )

    # Donations to both vaults before anybody deposits: worth nothing to the LP token.
    await send(
        pool,
        [
            transfer_ix(
                attacker.accounts[symbol], vault(pool, symbol), attacker.key, 50_000 * whole
            ),
            transfer_ix(
                attacker.accounts[stable.symbol], vault(pool, stable.symbol), attacker.key, 10**11
            ),
        ],
        attacker.wallet,
    )
    empty = await aum_view(pool)
    assert (empty.spot_usd, empty.lp_supply, empty.lp_price_usd) == (0, 0, USD)

    async with attack.holds(f"first {symbol} deposit after a donation mints at $1 per LP"):
        event = await deposit(pool, first, lp_accounts[first.key], symbol, amount)
        fee = event.fee_amount
        assert fee >= Fraction(amount * FEES["liquidity_min_fee_bps"], 10_000)
        # 1 LP unit per USD unit of the deposit net of its fee, rounded down, less the locked
        # LP: the donation counts for nothing.
        net_usd = int(usd_exact(amount - fee, token.decimals, price))
        assert event.lp_amount == net_usd - LOCKED_LP_SUPPLY
        value, supply = await exact_pool_value(pool)
        assert supply == event.lp_amount
        assert value == usd_exact(amount, token.decimals, price)
        assert (await aum_view(pool)).spot_usd == int(value)

    async with attack.holds(f"the next LP after the {symbol} donation gets a fair share"):
        lost = await next_lp_loss(
            pool, second, lp_accounts[second.key], stable.symbol, 12_345 * 10**6 + 3
        )
        assert lost <= FAIR_ROUNDING_USD, f"the next LP lost {float(lost) / USD} USD"


# ------------------------------------------------------------------------------------------
# The first LP token inflated: supply driven to one unit, or fees paid into the pool
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["withdrawal", "burn"])
async def test_the_only_lp_shrinks_the_supply_to_one_unit(
    world: World, attack: Attack, route: str
) -> None:
    """The only LP keeps one LP unit (withdrawing the rest, whose fee stays in the pool, or
    burning it with the token program). Without the locked LP that unit would be the whole pool
    and the next deposit, rounded down to whole units, would lose up to a unit's worth to it."""
    eth, usdt = EMPTY_POOLS["ETH"]
    pool = await fresh_pool(world, f"shrink-{route}", (eth, usdt), {"ETH": FEES, "USDT": FEES})
    attacker = await new_trader(pool, ETH=10 * ETH)
    victim = await new_trader(pool, USDT=100_000 * USDT)
    attacker_lp, victim_lp = await pool.lp_account(attacker.key), await pool.lp_account(victim.key)
    async with attack.holds(f"the next LP after the only LP's {route} down to one LP unit"):
        await deposit(pool, attacker, attacker_lp, "ETH", 10 * ETH)
        (held,) = await token_amounts(pool, [attacker_lp])
        if route == "withdrawal":
            shrink = await lp.remove_liquidity_ix(
                pool.client,
                attacker.key,
                pool.pool,
                pool.mint("ETH"),
                held - LP_UNIT,
                receiving_account=attacker.accounts["ETH"],
                lp_token_account=attacker_lp,
            )
        else:
            shrink = burn(
                BurnParams(
                    program_id=TOKEN_PROGRAM_ID,
                    account=attacker_lp,
                    mint=pda.lp_token_mint(pda.pool(pool.pool)),
                    owner=attacker.key,
                    amount=held - LP_UNIT,
                )
            )
        await send(pool, [shrink], attacker.wallet)
        value, supply = await exact_pool_value(pool)
        assert supply == LP_UNIT
        # The unit is worth a millionth of the pool: making it worth x left x * 10^6 behind.
        unit = lp_share_value(LP_UNIT, value, supply)
        assert unit * LOCKED_LP_SUPPLY < value
        # The victim deposits just under two units' worth: it gets one, losing at most one.
        amount = min(100_000 * USDT, int(2 * unit / price_of(usdt)) - 1)
        lost = await next_lp_loss(pool, victim, victim_lp, "USDT", amount)
        assert lost <= max(unit, Fraction(FAIR_ROUNDING_USD)), (
            f"the next LP lost ${float(lost) / USD:,.6f}, one unit is ${float(unit) / USD:,.6f}"
        )
        # And a real deposit loses nothing worth speaking of.
        lost = await next_lp_loss(pool, victim, victim_lp, "USDT", 10_000 * USDT + 3)
        assert lost <= max(unit, Fraction(FAIR_ROUNDING_USD))


async def test_first_depositor_inflates_the_lp_price_through_trading_fees(
    world: World, attack: Attack
) -> None:
    """A 1x long locks nothing, so the only LP of a pool can pay trading fees into it. With a
    first deposit of a few LP units that would make each unit worth dollars; the program
    refuses such a first deposit, and after the smallest one it takes the fees spread over at
    least the locked LP."""
    sol = TokenSpec("SOL", 9, False, 100_00, -2)
    pool = await fresh_pool(world, "inflate", (sol, STABLE), {"SOL": FEES, "USDC": FEES})
    attacker = await new_trader(pool, SOL=40_000 * SOL, USDC=10 * USDC)
    victim = await new_trader(pool, USDC=10_000 * USDC)
    attacker_lp = await pool.lp_account(attacker.key)
    victim_lp = await pool.lp_account(victim.key)
    market = long_market(pool, "SOL")
    sol_price, usdc_price = price_of(sol), price_of(STABLE)
    watch = [*attacker.accounts.values(), attacker_lp]
    for amount in (2, USDC):
        await attack.rejected(
            f"a first deposit of {amount} USDC units (not worth more than the locked LP)",
            [await add_ix(pool, attacker, attacker_lp, "USDC", amount)],
            [attacker.wallet],
            error="DepositTooSmall",
            watch=watch,
            env=pool,
        )
    async with attack.holds("first depositor inflates the LP price with trading fees"):
        start = await token_amounts(pool, attacker.accounts.values())
        # The smallest first deposit the program takes: worth one unit more than the locked LP
        # after the LP fee.
        first = await smallest_first_deposit(pool, "USDC")
        await deposit(pool, attacker, attacker_lp, "USDC", first)
        (held,) = await token_amounts(pool, [attacker_lp])
        assert held == 1
        # A 1x long locks nothing (size == collateral net of the fee), so an empty custody
        # accepts it; its open and close fees go to the owned tokens of the LPs.
        collateral = 10_000 * SOL
        gross = collateral * 100 // 1_000  # $100 per SOL, in USD units
        size = -(-gross * 10_000 // (10_000 + FEES["open_position_bps"]))
        for _ in range(3):
            await send(
                pool,
                [
                    trade.open_position_ix(
                        pool.client,
                        attacker.key,
                        market,
                        collateral_amount=collateral,
                        size_usd=size,
                        funding_account=attacker.accounts["SOL"],
                    ),
                    trade.close_position_ix(
                        pool.client,
                        attacker.key,
                        market,
                        receiving_account=attacker.accounts["SOL"],
                    ),
                ],
                attacker.wallet,
            )
        value, supply = await exact_pool_value(pool)
        unit = lp_share_value(1, value, supply)
        assert unit * LOCKED_LP_SUPPLY < value
        # The victim deposits just under two LP units' worth (a plain deposit, no minimum out).
        amount = min(10_000 * USDC, int(2 * unit / price_of(STABLE)) - 1)
        lost = await next_lp_loss(pool, victim, victim_lp, "USDC", amount)
        # The attacker leaves with everything its LP tokens are worth (in the victim's USDC).
        (held,) = await token_amounts(pool, [attacker_lp])
        await lp.remove_liquidity(
            pool.client,
            attacker.wallet,
            pool.pool,
            pool.mint("USDC"),
            held,
            receiving_account=attacker.accounts["USDC"],
            lp_token_account=attacker_lp,
        )
        end = await token_amounts(pool, attacker.accounts.values())
        spent = usd_exact(start[0] - end[0], 9, sol_price) + usd_exact(
            start[1] - end[1], 6, usdc_price
        )
        assert (lost <= FAIR_ROUNDING_USD, spent >= 0) == (True, True), (
            f"the next LP lost ${float(lost) / USD:,.2f} to rounding, "
            f"the first depositor gained ${float(-spent) / USD:,.2f}"
        )


async def smallest_first_deposit(pool: PoolEnv, symbol: str) -> int:
    """The smallest amount of ``symbol`` the program's quote accepts as a pool's first deposit."""
    low, high = 1, int(10 * 10 ** pool.specs[symbol].decimals)
    assert await quote_accepts(pool, symbol, high)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if await quote_accepts(pool, symbol, mid) else (mid, high)
    return high


async def quote_accepts(pool: PoolEnv, symbol: str, amount: int) -> bool:
    try:
        await views.add_liquidity_amount_and_fee(pool.client, pool.pool, pool.mint(symbol), amount)
    except ViewError:
        return False
    return True


# ------------------------------------------------------------------------------------------
# Removing a custody that received a donation
# ------------------------------------------------------------------------------------------


async def test_a_donation_cannot_block_removing_an_empty_custody(
    world: World, attack: Attack
) -> None:
    spare = TokenSpec("SPARE", 8, False, 4_200_000_000, -8)
    pool = await fresh_pool(world, "spare", (spare, STABLE), {"SPARE": FEES, "USDC": FEES})
    donated = 3 * 10**8 + 1
    donor = await new_trader(pool, SPARE=donated)
    admin_account = await pool.token_account(pool.admin.pubkey(), "SPARE")
    async with attack.holds("a donated vault is swept to the admin and the custody removed"):
        await send(
            pool,
            [transfer_ix(donor.accounts["SPARE"], vault(pool, "SPARE"), donor.key, donated)],
            donor.wallet,
        )
        await pool.client.remove_custody(
            pool.pool, pool.mint("SPARE"), admin_account, pool.admin, pool.approvers
        )
        assert await token_amounts(pool, [admin_account, vault(pool, "SPARE")]) == [donated, 0]
        remaining = (await pool.client.fetch("Pool", pda.pool(pool.pool))).custodies
        assert pool.client.custody_keys(pool.pool, pool.mint("SPARE")).custody not in remaining
