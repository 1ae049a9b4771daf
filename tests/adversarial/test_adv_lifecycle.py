"""Classes 21 and 22: creating what exists, and using what was closed.

Class 21, reinitialization: ``init`` again (by the admin or anyone), ``add_pool`` with an
existing name, ``add_custody`` for a mint the pool already holds, opening a position that is
already open (one per owner, side and custody); creation still works when someone pre-funded the
address (no griefing by lamports); no ``init_if_needed`` anywhere.

Class 22, closed-account revival: a position closed (or liquidated) and then, in the same
transaction, closed again, topped up, drained, liquidated, viewed, or refunded with lamports
first; a custody or pool removed and then used in the same transaction. Close-and-reopen in one
transaction is allowed: the rent and the tokens land with the owner. Rent of every closed
account goes to the party that paid it (owner, admin), never to a liquidator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from adversarial_cases import (
    Case,
    add_collateral_ix,
    case,
    close_ix,
    collateral_of,
    fresh_pool,
    lamports,
    lamports_to,
    liquidate_ix,
    open_ix,
    position_of,
    remove_collateral_ix,
    run_cases,
    send,
    small_collateral,
)
from adversary import SOL, USD, USDC, USDT, Attack, World
from pool_env import PoolEnv
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from trade_support import (
    Trader,
    events,
    long_market,
    new_trader,
    open_position,
    post_price,
)

from perpool import lp, pda, trade
from perpool.localnet import find_repo_root

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(21)]

IN_USE = "already in use"
"""The system program's refusal to create an account that exists."""
SRC = find_repo_root() / "localnet" / "programs" / "perpool"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def positions(world: World) -> AsyncIterator[World]:
    """The attacker holds a position in every market (it starts with long SOL only)."""
    for key, size in (
        ("short_sol", 1_000),
        ("long_eth", 1_000),
        ("short_eth", 1_000),
        ("long_ethsq", 1_000),
    ):
        market = world.markets[key]
        await open_position(
            world.env,
            world.attacker,
            market,
            collateral=small_collateral(collateral_of(world, market)),
            size_usd=size * USD,
        )
    yield world


# ------------------------------------------------------------------------------------------
# Class 21
# ------------------------------------------------------------------------------------------


async def reinit_cases(world: World) -> list[Case]:
    env, client, admin, me = world.env, world.client, world.env.admin, world.attacker
    out: list[Case] = []
    for who, signer, signers, threshold in (
        ("the admin", admin, [admin.pubkey()], 1),
        ("the attacker", me.wallet, [me.key], 1),
        ("the attacker with a 2-of-2 of its own", me.wallet, [me.key, Keypair().pubkey()], 2),
    ):
        out.append(
            case(
                f"init again by {who}",
                client.init_ix(
                    signers, threshold, signer.pubkey(), upgrade_authority=signer.pubkey()
                ),
                [signer],
                contains=IN_USE,
            )
        )
    for name, signer in (("main", admin), ("other", admin), ("main", me.wallet)):
        out.append(
            case(
                f"add_pool {name!r} again, signed by "
                f"{'the admin' if signer is admin else 'the attacker'}",
                client.add_pool_ix(name, signer.pubkey()),
                [signer],
                contains=IN_USE,
            )
        )
    for pool_env, symbol, signer in (
        *((env, s, admin) for s in env.specs),
        (world.other, "SOL", admin),
        (world.other, "USDC", admin),
        (env, "USDC", me.wallet),
    ):
        out.append(
            case(
                f"add_custody {symbol} to {pool_env.pool!r} again, signed by "
                f"{'the admin' if signer is admin else 'the attacker'}",
                client.add_custody_ix(
                    pool_env.pool,
                    pool_env.mint(symbol),
                    pool_env.specs[symbol].stable,
                    pool_env.config(symbol),
                    signer.pubkey(),
                ),
                [signer],
                contains=IN_USE,
            )
        )
    for trader, who in ((me, "attacker"), (world.victim, "victim")):
        for key, market in world.markets.items():
            out.append(
                case(
                    f"the {who} opens its open {key} position again",
                    open_ix(world, trader, market),
                    [trader.wallet],
                    contains=IN_USE,
                )
            )
    return out


async def test_creating_what_exists(positions: World, attack: Attack) -> None:
    assert await run_cases(attack, await reinit_cases(positions)) >= 24


async def test_no_init_if_needed(attack: Attack) -> None:
    sources = [p for p in (SRC / "src").rglob("*.rs")]
    using = [p.name for p in sources if "init_if_needed" in p.read_text()]
    attack.static(
        f"no init_if_needed in the program's {len(sources)} source files", not using, f"{using}"
    )
    manifest = (SRC / "Cargo.toml").read_text()
    attack.static(
        "anchor-lang is built without the init-if-needed feature",
        "init-if-needed" not in manifest,
        manifest,
    )


async def test_prefunded_addresses_do_not_block_creation(world: World, attack: Attack) -> None:
    """The attacker sends lamports to the addresses of a newcomer's position, a pool and a
    custody (its vault and oracle too) before they exist: each is still created, and the
    lamports stay in it for whoever pays its rent (a donation, not a lock)."""
    env, client, me = world.env, world.client, world.attacker
    newcomer = await new_trader(env, USDC=1_000 * USDC)
    market = world.markets["short_sol"]
    position = position_of(world, market, newcomer)
    gift = 1_000_000
    await send(client, [lamports_to(me.key, position, gift)], [], me.wallet)
    async with attack.holds("a pre-funded position address still opens, gift kept in it"):
        paid_before = await lamports(client, newcomer.key)
        await send(client, [open_ix(world, newcomer, market)], [newcomer.wallet], env.admin)
        state = await client.fetch("Position", position)
        assert state.owner == newcomer.key
        assert state.size_usd == 1_000 * USD
        rent = await lamports(client, position)
        # The owner paid only what the gift did not cover.
        assert paid_before - await lamports(client, newcomer.key) == rent - gift
    name = "prefunded"
    pool = pda.pool(name)
    for key in (pool, pda.lp_token_mint(pool)):
        await send(client, [lamports_to(me.key, key, gift)], [], me.wallet)
    async with attack.holds("a pre-funded pool and LP mint address still create the pool"):
        await client.add_pool(name, env.admin)
        assert (await client.fetch("Pool", pool)).name == name
        lp_mint = await AsyncToken(
            client.connection, pda.lp_token_mint(pool), TOKEN_PROGRAM_ID, env.admin
        ).get_mint_info()
        assert lp_mint.mint_authority == pda.transfer_authority()
        assert lp_mint.supply == 0
    mint = (
        await AsyncToken.create_mint(
            client.connection, env.admin, env.admin.pubkey(), 6, TOKEN_PROGRAM_ID
        )
    ).pubkey
    keys = client.custody_keys(name, mint)
    for key in (keys.custody, keys.token_account, keys.oracle):
        await send(client, [lamports_to(me.key, key, gift)], [], me.wallet)
    async with attack.holds("a pre-funded custody, vault and oracle address still add it"):
        config = env.config("USDC") | {
            "oracle": env.config("USDC")["oracle"] | {"oracle_account": keys.oracle}
        }
        await client.add_custody(name, mint, True, config, env.admin)
        created = await client.fetch("Custody", keys.custody)
        assert created.mint == mint
        assert created.token_account == keys.token_account
        vault_info = await AsyncToken(
            client.connection, mint, TOKEN_PROGRAM_ID, env.admin
        ).get_account_info(keys.token_account)
        assert vault_info.owner == pda.transfer_authority()
        assert vault_info.amount == 0


# ------------------------------------------------------------------------------------------
# Class 22
# ------------------------------------------------------------------------------------------


async def revival_cases(world: World) -> list[Case]:
    """The attacker closes each of its positions and, in the same transaction, uses it again."""
    client, me = world.client, world.attacker
    out: list[Case] = []
    for key, market in world.markets.items():
        close = close_ix(world, me, market)
        position = position_of(world, market, me)
        rent = await lamports(client, position)
        view = client.ix(
            "get_pnl",
            accounts={
                "perpool": pda.perpool(),
                "pool": pda.pool(world.env.pool),
                "position": position,
                **{
                    k: v
                    for k, v in trade.market_accounts(client, market).items()
                    if k
                    in (
                        "custody",
                        "custody_oracle",
                        "collateral_custody",
                        "collateral_custody_oracle",
                    )
                },
            },
        )
        for what, then, error in (
            ("tops it up", [add_collateral_ix(world, me, market)], "AccountNotInitialized"),
            ("closes it again", [close], "AccountNotInitialized"),
            (
                "removes collateral",
                [remove_collateral_ix(world, me, market)],
                "AccountNotInitialized",
            ),
            ("liquidates it", [liquidate_ix(world, me, market, me)], "AccountNotInitialized"),
            ("reads its PnL", [view], "AccountNotInitialized"),
            (
                "refunds its rent and tops it up",
                [lamports_to(me.key, position, rent), add_collateral_ix(world, me, market)],
                "AccountOwnedByWrongProgram",
            ),
        ):
            if what == "reads its PnL" and key not in ("long_sol", "long_ethsq"):
                continue
            out.append(
                case(
                    f"close {key}, then {what} in the same transaction",
                    [close, *then],
                    [me.wallet],
                    error=error,
                )
            )
    return out


@pytest.mark.attack_class(22)
async def test_closed_positions_stay_closed(positions: World, attack: Attack) -> None:
    assert await run_cases(attack, await revival_cases(positions)) >= 27


@pytest.mark.attack_class(22)
async def test_close_and_reopen_in_one_transaction(positions: World, attack: Attack) -> None:
    """Closing and opening the same position in one transaction is allowed: the owner gets the
    rent back and pays it again, receives the payout and pays the new collateral; the position
    is a fresh one."""
    world, client, me = positions, positions.client, positions.attacker
    for key in ("long_eth", "short_sol"):
        market = world.markets[key]
        symbol = collateral_of(world, market)
        position = position_of(world, market, me)
        old = await client.fetch("Position", position)
        custody_key = client.custody_keys(world.env.pool, market.mint).custody
        book_before = await client.fetch("Custody", custody_key)
        rent = await lamports(client, position)
        wallet_before = await lamports(client, me.key)
        tokens_before = await world.env.balance(me.accounts[symbol])
        collateral = small_collateral(symbol) // 2
        async with attack.holds(f"close and reopen {key} in one transaction"):
            signature = await send(
                client,
                [
                    close_ix(world, me, market),
                    open_ix(world, me, market, collateral=collateral, size_usd=500 * USD),
                ],
                [me.wallet],
                world.env.admin,
            )
            closed = [e for e in await events(world.env, signature) if e.name == "PositionClosed"]
            assert len(closed) == 1
            payout = closed[0].data.payout_amount
            assert await lamports(client, me.key) == wallet_before
            assert await lamports(client, position) == rent
            assert (
                await world.env.balance(me.accounts[symbol]) == tokens_before + payout - collateral
            )
            new = await client.fetch("Position", position)
            assert new.size_usd == 500 * USD
            assert new.open_time >= old.open_time
            assert new.unpaid_borrow_fee_usd == 0
            assert new.unpaid_funding_usd == 0
            book = await client.fetch("Custody", custody_key)
            totals = book.longs if market.side == "long" else book.shorts
            before = book_before.longs if market.side == "long" else book_before.shorts
            assert totals.open_positions == before.open_positions


@pytest.mark.attack_class(22)
async def test_close_returns_the_rent_to_the_owner(positions: World, attack: Attack) -> None:
    world, client, me = positions, positions.client, positions.attacker
    market = world.markets["long_ethsq"]
    position = position_of(world, market, me)
    rent = await lamports(client, position)
    before = await lamports(client, me.key)
    async with attack.holds(
        "closing long_ethsq returns its rent to the owner, fee paid by another"
    ):
        await send(client, [close_ix(world, me, market)], [me.wallet], world.env.admin)
        assert await lamports(client, position) == 0
        assert await lamports(client, me.key) - before == rent


async def liquidatable(world: World, name: str) -> tuple[PoolEnv, Trader, Trader]:
    """A pool of its own where the owner's long SOL (40x) is liquidatable; and a keeper."""
    env = await fresh_pool(world, name, {"SOL": 1_000 * SOL, "USDC": 100_000 * USDC})
    owner = await new_trader(env, SOL=10 * SOL)
    keeper = await new_trader(env)
    await open_position(env, owner, long_market(env, "SOL"), collateral=SOL, size_usd=4_000 * USD)
    await post_price(env, "SOL", 97_80)
    return env, owner, keeper


@pytest.mark.attack_class(22)
async def test_liquidated_positions_stay_closed(world: World, attack: Attack) -> None:
    env, owner, keeper = await liquidatable(world, "revive_liq")
    client = env.client
    market = long_market(env, "SOL")
    position = trade.position_key(client, market, owner.key)
    liquidate = trade.liquidate_ix(
        client,
        keeper.key,
        market,
        owner.key,
        receiving_account=keeper.accounts["SOL"],
        owner_receiving_account=owner.accounts["SOL"],
    )
    top_up = trade.add_collateral_ix(
        client, owner.key, market, SOL // 10, funding_account=owner.accounts["SOL"]
    )
    close = trade.close_position_ix(
        client, owner.key, market, receiving_account=owner.accounts["SOL"]
    )
    rent = await lamports(client, position)
    watch = [owner.key, keeper.key, *owner.accounts.values(), *keeper.accounts.values()]
    signers = [keeper.wallet, owner.wallet]
    for label, ixs, error in (
        ("liquidate, then the owner tops it up", [liquidate, top_up], "AccountNotInitialized"),
        ("liquidate, then the owner closes it", [liquidate, close], "AccountNotInitialized"),
        ("liquidate twice", [liquidate, liquidate], "AccountNotInitialized"),
        (
            "liquidate, refund its rent, then top it up",
            [liquidate, lamports_to(keeper.key, position, rent), top_up],
            "AccountOwnedByWrongProgram",
        ),
    ):
        await attack.rejected(label, ixs, signers, error=error, watch=watch)
    keeper_before = await lamports(client, keeper.key)
    owner_before = await lamports(client, owner.key)
    async with attack.holds("a liquidated position's rent goes to its owner, not the keeper"):
        await send(client, [liquidate], [keeper.wallet], env.admin)
        assert await lamports(client, position) == 0
        assert await lamports(client, owner.key) - owner_before == rent
        assert await lamports(client, keeper.key) == keeper_before


async def removal_cases(world: World) -> tuple[PoolEnv, list[Case]]:
    """A pool with an empty USDT custody, and a pool without custodies: each removed and then
    used in the same transaction."""
    env = await fresh_pool(world, "revive", {"USDC": 10_000 * USDC}, empty=["USDT"])
    client, admin = env.client, env.admin
    receiving = await env.token_account(admin.pubkey(), "USDT")
    keys = client.custody_keys(env.pool, env.mint("USDT"))
    remove = client.remove_custody_ix(env.pool, env.mint("USDT"), receiving, admin.pubkey())
    spec = env.specs["USDT"]
    now = await env.now()
    set_price = client.set_price_ix(
        env.pool,
        env.mint("USDT"),
        admin.pubkey(),
        price=spec.price,
        expo=spec.expo,
        conf=0,
        ema=spec.price,
        publish_time=now,
    )
    crank = {"pool": keys.pool, "custody": keys.custody}
    provider = await new_trader(env, USDT=1_000 * USDT)
    lp_account = await env.lp_account(provider.key)
    deposit = await lp.add_liquidity_ix(
        client,
        provider.key,
        env.pool,
        env.mint("USDT"),
        100 * USDT,
        funding_account=provider.accounts["USDT"],
        lp_token_account=lp_account,
    )
    rent = await lamports(client, keys.custody)
    out: list[Case] = []
    for what, then, signers, error in (
        ("posts its price", [set_price], [admin], "AccountNotInitialized"),
        (
            "accrues its borrow rate",
            [client.ix("accrue_borrow", accounts=crank)],
            [admin],
            "AccountNotInitialized",
        ),
        (
            "updates its funding",
            [client.ix("update_funding", accounts=crank)],
            [admin],
            "AccountNotInitialized",
        ),
        ("deposits into it", [deposit], [admin, provider.wallet], "AccountNotInitialized"),
        (
            "refunds its rent and accrues",
            [
                lamports_to(admin.pubkey(), keys.custody, rent),
                client.ix("accrue_borrow", accounts=crank),
            ],
            [admin],
            "AccountOwnedByWrongProgram",
        ),
        ("removes it again", [remove], [admin], "AccountNotInitialized"),
    ):
        out.append(
            case(
                f"remove_custody USDT, then {what} in the same transaction",
                [remove, *then],
                signers,
                error=error,
                watch=[receiving, provider.key, *provider.accounts.values(), lp_account],
            )
        )
    empty = await fresh_pool(world, "revive_pool", {})
    remove_pool = client.remove_pool_ix(empty.pool, admin.pubkey())
    mint = (
        await AsyncToken.create_mint(client.connection, admin, admin.pubkey(), 6, TOKEN_PROGRAM_ID)
    ).pubkey
    out.append(
        case(
            "remove_pool, then add a custody to it in the same transaction",
            [
                remove_pool,
                client.add_custody_ix(empty.pool, mint, True, env.config("USDC"), admin.pubkey()),
            ],
            [admin],
            error="AccountNotInitialized",
        )
    )
    out.append(
        case(
            # The LP mint outlives the pool (an SPL mint cannot be closed), so its address
            # stays taken and the name cannot be used again.
            "remove_pool, then add a pool of the same name in the same transaction",
            [remove_pool, client.add_pool_ix(empty.pool, admin.pubkey())],
            [admin],
            contains=IN_USE,
        )
    )
    out.append(
        case(
            "remove_pool, then remove it again in the same transaction",
            [remove_pool, remove_pool],
            [admin],
            error="AccountNotInitialized",
        )
    )
    return env, out


@pytest.mark.attack_class(22)
async def test_removed_custody_and_pool_stay_removed(world: World, attack: Attack) -> None:
    _, cases = await removal_cases(world)
    await run_cases(attack, cases)


@pytest.mark.attack_class(22)
async def test_custody_removed_and_added_again_is_fresh(world: World, attack: Attack) -> None:
    """Removing an empty custody and adding the same mint back in one transaction is allowed
    (both need the multisig): the tokens someone sent straight to the vault go to the admin's
    receiving account, the rent comes back to the admin and is paid again, and the custody,
    vault and oracle start from nothing."""
    env = await fresh_pool(world, "readd", {"USDC": 10_000 * USDC}, empty=["USDT"])
    client, admin = env.client, env.admin
    keys = client.custody_keys(env.pool, env.mint("USDT"))
    receiving = await env.token_account(admin.pubkey(), "USDT")
    stray = await env.fund(world.attacker.key, "USDT", 5 * USDT)
    sent = await env.mints["USDT"].transfer(
        stray, keys.token_account, world.attacker.wallet, 5 * USDT
    )
    await client.connection.confirm_transaction(sent.value, Confirmed, sleep_seconds=0.05)
    admin_before = await lamports(client, admin.pubkey())
    remove = client.remove_custody_ix(env.pool, env.mint("USDT"), receiving, admin.pubkey())
    add = client.add_custody_ix(
        env.pool, env.mint("USDT"), True, env.config("USDT"), admin.pubkey()
    )
    async with attack.holds("remove_custody and add_custody of one mint in a transaction"):
        await send(client, [remove, add], [admin], world.relayer)
        assert await lamports(client, admin.pubkey()) == admin_before
        assert await env.balance(receiving) == 5 * USDT
        assert await env.balance(keys.token_account) == 0
        fresh = await client.fetch("Custody", keys.custody)
        a = fresh.assets
        assert (a.owned, a.locked, a.collateral, a.protocol_fees) == (0, 0, 0, 0)
        assert fresh.longs.open_positions == fresh.shorts.open_positions == 0
        pool = await client.fetch("Pool", keys.pool)
        assert list(pool.custodies).count(keys.custody) == 1
        oracle = await client.fetch("CustomOracle", keys.oracle)
        assert (oracle.price, oracle.publish_time) == (0, 0)
