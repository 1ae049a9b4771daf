"""Class 19, liquidation griefing.

The owner races the keeper: it tops its position up, closes it, or the price recovers just
before the liquidation lands; the liquidation then fails cleanly with the named error and
nothing changes, and the keeper (``perpool_keeper``'s liquidation job, run on this chain)
reports the refusal and carries on with the other positions. An owner's token account that is
closed or frozen (the pool's mints here have a freeze authority, like USDC's) cannot make a
position unclosable or unliquidatable: the program takes any token account of the owner for the
remainder, and the keeper finds one.
"""

from __future__ import annotations

from fractions import Fraction
from math import isqrt
from pathlib import Path

import pytest
import pytest_asyncio
from adversarial_economics import (
    fresh_pool,
    funded_traders,
    funded_wallet,
    keeper_tick,
    keeper_tick_with_metrics,
    seed_liquidity,
    send,
    token_amounts,
    transfer_ix,
)
from adversary import CONFIGS, ETH, SOL, USD, USDC, USDT, Attack, World
from pool_env import PoolEnv, TokenSpec
from solana.rpc.types import TokenAccountOpts
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    CloseAccountParams,
    FreezeAccountParams,
    InitializeAccountParams,
    close_account,
    freeze_account,
    get_associated_token_address,
    initialize_account,
)
from trade_support import Trader, post_price

from perpool import trade, views
from perpool.trade import LONG, SHORT, Market

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(19)]

E8 = 10**8
TOKENS = (
    TokenSpec("SOL", 9, False, 100 * E8, -8),
    TokenSpec("ETH", 8, False, 3_000 * E8, -8),
    TokenSpec("USDC", 6, True, 1_000_000, -6),
    TokenSpec("USDT", 6, True, 1_000_000, -6),
    TokenSpec("ETHSQ", 8, False, 1_000 * E8, -8),
)
BASE = {t.symbol: t.price for t in TOKENS}
SIZE = 10_000 * USD
DEPTH = Fraction(45, 1_000)
"""4.5% against a 20x position: $30 of margin, under the last step's $50 (closed in full)."""
FUNDS = {"SOL": 50 * SOL, "ETH": 5 * ETH, "USDC": 20_000 * USDC, "USDT": 20_000 * USDT}
# (name, traded, side, collateral token, collateral, top-up worth about $120 at the moved price)
LEGS = {
    "long SOL": ("SOL", LONG, "SOL", 5 * SOL, 5 * SOL // 4),
    "long ETH": ("ETH", LONG, "ETH", ETH // 6 + 1, ETH // 24),
    "long ETH²": ("ETHSQ", LONG, "USDC", 500 * USDC, 120 * USDC),
    "short SOL": ("SOL", SHORT, "USDC", 500 * USDC, 120 * USDC),
    "short ETH": ("ETH", SHORT, "USDT", 500 * USDT, 120 * USDT),
    "short ETH²": ("ETHSQ", SHORT, "USDC", 500 * USDC, 120 * USDC),
}


def market(pool: PoolEnv, leg: str) -> Market:
    symbol, side, held, _, _ = LEGS[leg]
    return Market(pool.pool, pool.mint(symbol), pool.mint(held), side)


def held(leg: str) -> str:
    return LEGS[leg][2]


def moved_price(symbol: str, side: str) -> int:
    factor = 1 - DEPTH if side == LONG else 1 + DEPTH
    if symbol == "ETHSQ":
        return isqrt(int(BASE[symbol] ** 2 * factor))
    return int(BASE[symbol] * factor)


async def move(pool: PoolEnv, side: str) -> None:
    for symbol in ("SOL", "ETH", "ETHSQ"):
        await post_price(pool, symbol, moved_price(symbol, side))


async def restore(pool: PoolEnv) -> None:
    for symbol in ("SOL", "ETH", "ETHSQ"):
        await post_price(pool, symbol, BASE[symbol])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool(world: World) -> PoolEnv:
    # A 0.1% discount (the world's is 0.5%, all that is left at the last step): a liquidated
    # SOL position has a remainder to pay its owner.
    configs = CONFIGS | {"SOL": CONFIGS["SOL"] | {"liquidation_reward_bps": 10}}
    built = await fresh_pool(world, "griefing", TOKENS, configs, freeze=True)
    await seed_liquidity(
        built, SOL=2_000 * SOL, ETH=200 * ETH, USDC=2_000_000 * USDC, USDT=1_000_000 * USDT
    )
    return built


def open_ix(pool: PoolEnv, owner: Trader, leg: str) -> Instruction:
    return trade.open_position_ix(
        pool.client,
        owner.key,
        market(pool, leg),
        collateral_amount=LEGS[leg][3],
        size_usd=SIZE,
        funding_account=owner.accounts[held(leg)],
    )


def close_ix(pool: PoolEnv, owner: Trader, leg: str, close_bps: int = 10_000) -> Instruction:
    return trade.close_position_ix(
        pool.client,
        owner.key,
        market(pool, leg),
        receiving_account=owner.accounts[held(leg)],
        close_bps=close_bps,
    )


def top_up_ix(pool: PoolEnv, owner: Trader, leg: str) -> Instruction:
    return trade.add_collateral_ix(
        pool.client,
        owner.key,
        market(pool, leg),
        LEGS[leg][4],
        funding_account=owner.accounts[held(leg)],
    )


def liquidate_ix(
    pool: PoolEnv, keeper: Trader, owner: Pubkey, leg: str, owner_account: Pubkey
) -> Instruction:
    return trade.liquidate_ix(
        pool.client,
        keeper.key,
        market(pool, leg),
        owner,
        receiving_account=keeper.accounts[held(leg)],
        owner_receiving_account=owner_account,
    )


async def exists(pool: PoolEnv, key: Pubkey) -> bool:
    return (await pool.client.connection.get_account_info(key)).value is not None


def position(pool: PoolEnv, leg: str, owner: Pubkey) -> Pubkey:
    return trade.position_key(pool.client, market(pool, leg), owner)


# ------------------------------------------------------------------------------------------
# The owner is faster than the liquidator
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", [LONG, SHORT])
async def test_the_owner_races_the_liquidator(pool: PoolEnv, attack: Attack, side: str) -> None:
    legs = [leg for leg in LEGS if LEGS[leg][1] == side]
    topper, closer, keeper = await funded_traders(pool, 3, **FUNDS)
    await pool.client.send([open_ix(pool, topper, leg) for leg in legs], [topper.wallet])
    await pool.client.send([open_ix(pool, closer, leg) for leg in legs[:1]], [closer.wallet])
    watch = [*topper.accounts.values(), *closer.accounts.values(), *keeper.accounts.values()]
    await move(pool, side)
    try:
        for leg in legs:
            assert await views.liquidation_state(pool.client, market(pool, leg), topper.key)
            await send(pool, [top_up_ix(pool, topper, leg)], topper.wallet)
            assert not await views.liquidation_state(pool.client, market(pool, leg), topper.key)
            await attack.rejected(
                f"liquidate a {leg} its owner just topped up",
                [liquidate_ix(pool, keeper, topper.key, leg, topper.accounts[held(leg)])],
                [keeper.wallet],
                error="NotLiquidatable",
                watch=watch,
                env=pool,
            )
        leg = legs[0]
        await attack.rejected(
            f"partial close of a liquidatable {leg} (shedding its worst part)",
            [close_ix(pool, closer, leg, 5_000)],
            [closer.wallet],
            error="InvalidCloseSize",
            watch=watch,
            env=pool,
        )
        await send(pool, [close_ix(pool, closer, leg)], closer.wallet)
        await attack.rejected(
            f"liquidate a {leg} its owner just closed",
            [liquidate_ix(pool, keeper, closer.key, leg, closer.accounts[held(leg)])],
            [keeper.wallet],
            error="AccountNotInitialized",
            watch=watch,
            env=pool,
        )
    finally:
        await restore(pool)
    await pool.client.send([close_ix(pool, topper, leg) for leg in legs], [topper.wallet])


async def test_the_price_recovers_before_the_liquidation(pool: PoolEnv, attack: Attack) -> None:
    owner, keeper = await funded_traders(pool, 2, **FUNDS)
    leg = "long ETH"
    await send(pool, [open_ix(pool, owner, leg)], owner.wallet)
    await move(pool, LONG)
    assert await views.liquidation_state(pool.client, market(pool, leg), owner.key)
    await restore(pool)
    await attack.rejected(
        "liquidate a long ETH after the price came back",
        [liquidate_ix(pool, keeper, owner.key, leg, owner.accounts["ETH"])],
        [keeper.wallet],
        error="NotLiquidatable",
        watch=[*owner.accounts.values(), *keeper.accounts.values()],
        env=pool,
    )
    await send(pool, [close_ix(pool, owner, leg)], owner.wallet)


# ------------------------------------------------------------------------------------------
# The keeper: refusals are reported, the others are liquidated
# ------------------------------------------------------------------------------------------


async def test_the_keeper_reports_a_lost_race_and_carries_on(
    pool: PoolEnv, attack: Attack, tmp_path: Path
) -> None:
    topper, beaten, slow = await funded_traders(pool, 3, **FUNDS)
    rival = (await funded_traders(pool, 1, **FUNDS))[0]
    payer = Keypair()
    await funded_wallet(pool, payer)
    leg = "short SOL"
    for owner in (topper, beaten, slow):
        await send(pool, [open_ix(pool, owner, leg)], owner.wallet)
    await move(pool, SHORT)
    targets = {str(position(pool, leg, o.key)): o for o in (topper, beaten, slow)}

    async def race(target: str) -> None:
        owner = targets[target]
        if owner is topper:
            await send(pool, [top_up_ix(pool, topper, leg)], topper.wallet)
        elif owner is beaten:
            await send(
                pool,
                [liquidate_ix(pool, rival, beaten.key, leg, beaten.accounts["USDC"])],
                rival.wallet,
            )

    try:
        async with attack.holds(
            "keeper: one owner tops up, a rival lands first, the third is liquidated"
        ):
            results, metrics = await keeper_tick_with_metrics(pool, tmp_path, payer, race)
            by_owner = {targets[r["target"]].key: r for r in results}
            assert by_owner[topper.key]["status"] == "rejected"
            assert by_owner[topper.key]["error"] == "NotLiquidatable"
            assert by_owner[beaten.key]["status"] == "rejected"
            assert by_owner[beaten.key]["error"] == "AccountNotInitialized"
            assert by_owner[slow.key]["status"] == "landed"
            # The keeper's metrics name the program errors it met.
            for error in ("NotLiquidatable", "AccountNotInitialized"):
                sample = (
                    f'perpool_keeper_tx_failed_total{{error="{error}",kind="liquidate",'
                    'reason="simulation"} 1.0'
                )
                assert sample in metrics.splitlines(), metrics
            assert await exists(pool, position(pool, leg, topper.key))
            assert not await exists(pool, position(pool, leg, slow.key))
            # The next tick finds nothing left to do.
            assert await keeper_tick(pool, tmp_path, payer) == []
    finally:
        await restore(pool)
    await send(pool, [close_ix(pool, topper, leg)], topper.wallet)


# ------------------------------------------------------------------------------------------
# The owner's token account closed or frozen
# ------------------------------------------------------------------------------------------


async def close_token_account(pool: PoolEnv, owner: Trader, symbol: str) -> None:
    account = owner.accounts[symbol]
    (balance,) = await token_amounts(pool, [account])
    sink = await pool.token_account(pool.admin.pubkey(), symbol)
    ixs = [transfer_ix(account, sink, owner.key, balance)] if balance else []
    ixs.append(
        close_account(
            CloseAccountParams(
                program_id=TOKEN_PROGRAM_ID, account=account, dest=owner.key, owner=owner.key
            )
        )
    )
    await send(pool, ixs, owner.wallet)


async def freeze(pool: PoolEnv, account: Pubkey, symbol: str) -> None:
    await pool.client.send(
        [
            freeze_account(
                FreezeAccountParams(
                    program_id=TOKEN_PROGRAM_ID,
                    account=account,
                    mint=pool.mint(symbol),
                    authority=pool.admin.pubkey(),
                )
            )
        ]
    )


async def other_token_account(pool: PoolEnv, owner: Pubkey, symbol: str) -> Pubkey:
    """A token account of ``owner`` that is not its associated one."""
    account = Keypair()
    rent = (await pool.client.connection.get_minimum_balance_for_rent_exemption(165)).value
    await pool.client.send(
        [
            create_account(
                CreateAccountParams(
                    from_pubkey=pool.admin.pubkey(),
                    to_pubkey=account.pubkey(),
                    lamports=rent,
                    space=165,
                    owner=TOKEN_PROGRAM_ID,
                )
            ),
            initialize_account(
                InitializeAccountParams(
                    program_id=TOKEN_PROGRAM_ID,
                    account=account.pubkey(),
                    mint=pool.mint(symbol),
                    owner=owner,
                )
            ),
        ],
        [account],
    )
    return account.pubkey()


async def test_a_closed_or_frozen_owner_account_cannot_block_the_liquidation(
    pool: PoolEnv, attack: Attack, tmp_path: Path
) -> None:
    closed, frozen, elsewhere, in_debt, closing, keeper = await funded_traders(pool, 6, **FUNDS)
    payer = Keypair()
    await funded_wallet(pool, payer)
    leg = "short SOL"
    for owner in (closed, frozen, elsewhere, closing):
        await send(pool, [open_ix(pool, owner, leg)], owner.wallet)
    # 33x: at the same price it owes more than its collateral, so nothing is paid to its owner.
    deep = trade.open_position_ix(
        pool.client,
        in_debt.key,
        market(pool, leg),
        collateral_amount=300 * USDC,
        size_usd=SIZE,
        funding_account=in_debt.accounts["USDC"],
    )
    await send(pool, [deep], in_debt.wallet)
    await close_token_account(pool, closed, "USDC")
    for owner in (frozen, elsewhere, in_debt, closing):
        await freeze(pool, owner.accounts["USDC"], "USDC")
    watch = [*keeper.accounts.values()]
    for owner in (closed, frozen, elsewhere, in_debt, closing):
        watch += [owner.key, owner.accounts["USDC"], position(pool, leg, owner.key)]
    await move(pool, SHORT)
    try:
        await attack.rejected(
            "liquidation paying the remainder to the owner's closed token account",
            [liquidate_ix(pool, keeper, closed.key, leg, closed.accounts["USDC"])],
            [keeper.wallet],
            error="AccountNotInitialized",
            watch=watch,
            env=pool,
        )
        await attack.failed(
            "liquidation paying the remainder to the owner's frozen token account",
            [liquidate_ix(pool, keeper, frozen.key, leg, frozen.accounts["USDC"])],
            [keeper.wallet],
            contains="frozen",
            watch=watch,
            env=pool,
        )
        await attack.failed(
            "the owner closes into its own frozen token account",
            [close_ix(pool, closing, leg)],
            [closing.wallet],
            contains="frozen",
            watch=watch,
            env=pool,
        )
        async with attack.holds(
            "the owner of a frozen account closes into another account of its own"
        ):
            account = await other_token_account(pool, closing.key, "USDC")
            await send(
                pool,
                [
                    trade.close_position_ix(
                        pool.client, closing.key, market(pool, leg), receiving_account=account
                    )
                ],
                closing.wallet,
            )
            assert not await exists(pool, position(pool, leg, closing.key))
            assert (await token_amounts(pool, [account]))[0] > 0
        async with attack.holds(
            "a liquidator pays a frozen owner's remainder to another of its accounts"
        ):
            account = await other_token_account(pool, elsewhere.key, "USDC")
            await send(
                pool, [liquidate_ix(pool, keeper, elsewhere.key, leg, account)], keeper.wallet
            )
            assert not await exists(pool, position(pool, leg, elsewhere.key))
            assert (await token_amounts(pool, [account]))[0] > 0

        results = {r["target"]: r for r in await keeper_tick(pool, tmp_path, payer)}

        def landed(owner: Trader) -> bool:
            return results.get(str(position(pool, leg, owner.key)), {}).get("status") == "landed"

        async with attack.holds("the keeper recreates a closed owner token account and liquidates"):
            assert landed(closed), results
            assert not await exists(pool, position(pool, leg, closed.key))
            recreated = get_associated_token_address(closed.key, pool.mint("USDC"))
            assert (await token_amounts(pool, [recreated]))[0] > 0
        async with attack.holds(
            "the keeper liquidates a position in bad debt whose owner is frozen"
        ):
            assert landed(in_debt), results
            assert not await exists(pool, position(pool, leg, in_debt.key))
        async with attack.holds("the keeper liquidates a position whose owner's account is frozen"):
            assert landed(frozen), results
            assert not await exists(pool, position(pool, leg, frozen.key))
            # The remainder reached another token account of the owner's.
            accounts = await pool.client.connection.get_token_accounts_by_owner(
                frozen.key, TokenAccountOpts(mint=pool.mint("USDC"))
            )
            others = [a.pubkey for a in accounts.value if a.pubkey != frozen.accounts["USDC"]]
            assert len(others) == 1
            assert (await token_amounts(pool, others))[0] > 0
    finally:
        await restore(pool)
