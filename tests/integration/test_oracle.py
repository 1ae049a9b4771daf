"""Oracles: the custom oracle (authority, publish time, price, exponent, confidence, staleness)
and Pyth ``PriceUpdateV2`` accounts loaded as validator fixtures.

One validator for the module, started with the Pyth fixtures; the Pyth custody lives in its own
pool so that pointing it at a broken account does not disturb the main pool.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import PoolEnv, build_pool_env
from pyth_fixture import PYTH_RECEIVER, PriceUpdate, write_fixture
from rejections import assert_rejected, view_error_name
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID

from perpool import lp, pda, trade, views
from perpool.client import ViewError
from perpool.custody_config import custody_config
from perpool.localnet import LocalnetProcess
from perpool.trade import liquidate_ix, open_position_ix, swap_ix

pytestmark = pytest.mark.asyncio(loop_scope="module")

SOL = 10**9
USDC = 10**6
USD = 10**6
MAX_AGE = 60  # the pool's default max_price_age_sec
PYTH_POOL = "pyth"
ETH_DECIMALS = 8
ETH_FEED = bytes(range(1, 33))
OTHER_FEED = bytes(range(33, 65))
DAY = 86_400


@dataclass(frozen=True)
class PythAccount:
    address: Pubkey
    data: bytes
    owner: Pubkey = PYTH_RECEIVER


def pyth_accounts(now: int) -> dict[str, PythAccount]:
    def update(**changes: Any) -> bytes:
        fields: dict[str, Any] = {
            "feed_id": ETH_FEED,
            "price": 3_000_00000000,
            "conf": 1_00000000,
            "exponent": -8,
            "publish_time": now - 5,
            "ema_price": 2_990_00000000,
        }
        return PriceUpdate(**(fields | changes)).encode()

    def account(data: bytes, owner: Pubkey = PYTH_RECEIVER) -> PythAccount:
        return PythAccount(Keypair().pubkey(), data, owner)

    return {
        "good": account(update()),
        "positive_expo": account(update(price=3, exponent=3, conf=0, ema_price=3)),
        "wrong_feed": account(update(feed_id=OTHER_FEED)),
        "wrong_owner": account(update(), owner=TOKEN_PROGRAM_ID),
        "partial": account(update(partial_signatures=3)),
        "future": account(update(publish_time=now + 10 * DAY)),
        "stale": account(update(publish_time=now - 2 * DAY)),
        "zero_price": account(update(price=0)),
        "negative_price": account(update(price=-3_000_00000000)),
        "wide_conf": account(update(conf=30_00000001)),  # just over 1% of $3000
        "conf_at_limit": account(update(conf=30_00000000)),
        "bad_discriminator": account(update()[:8][::-1] + update()[8:]),
        "expo_i32_min": account(update(exponent=-(2**31))),
        "expo_19": account(update(price=3, exponent=19, conf=0, ema_price=3)),
    }


@dataclass
class OracleEnv:
    env: PoolEnv
    pyth: dict[str, PythAccount]
    eth: AsyncToken


@pytest.fixture(scope="module")
def pyth() -> dict[str, PythAccount]:
    return pyth_accounts(int(time.time()))


@pytest.fixture(scope="module")
def net(
    pyth: dict[str, PythAccount], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalnetProcess]:
    folder = tmp_path_factory.mktemp("pyth")
    args: list[str] = []
    for name, acc in pyth.items():
        path = write_fixture(folder / f"{name}.json", acc.address, acc.data, owner=acc.owner)
        args += ["--account", str(acc.address), str(path)]
    process = start_validator(extra_args=args)
    yield process
    process.stop()


def pyth_config(env: PoolEnv, oracle: Pubkey, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "pyth": True,
        "feed_id": ETH_FEED,
        "max_price_age_sec": DAY,
    } | overrides
    return custody_config(oracle, client_types=env.client.program.type, **settings)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def oenv(net: LocalnetProcess, pyth: dict[str, PythAccount]) -> AsyncIterator[OracleEnv]:
    env = await build_pool_env(net.url, net.faucet())
    client = env.client
    eth = await AsyncToken.create_mint(
        client.connection, env.admin, env.admin.pubkey(), ETH_DECIMALS, TOKEN_PROGRAM_ID
    )
    await client.add_pool(PYTH_POOL, env.admin)
    await client.add_custody(
        PYTH_POOL, eth.pubkey, False, pyth_config(env, pyth["good"].address), env.admin
    )
    yield OracleEnv(env, pyth, eth)
    await client.close()


@pytest.fixture
def env(oenv: OracleEnv) -> PoolEnv:
    return oenv.env


async def view_error(coro: Any) -> str | None:
    with pytest.raises(ViewError) as excinfo:
        await coro
    return view_error_name(excinfo.value)


# ---- custom oracle ----------------------------------------------------------------------------


async def test_only_the_oracle_authority_posts_prices(env: PoolEnv) -> None:
    stranger = await env.new_wallet()
    ix = env.client.set_price_ix(
        env.pool,
        env.mint("SOL"),
        stranger.pubkey(),
        price=1,
        expo=0,
        conf=0,
        ema=1,
        publish_time=await env.now(),
    )
    await assert_rejected(env.client, [ix], [stranger], error="NotOracleAuthority")


async def test_posted_price_is_stored_and_emitted(env: PoolEnv) -> None:
    await env.set_price("SOL", 123_45, conf=6, ema=123_00)
    oracle = await env.client.fetch(
        "CustomOracle", env.client.custody_keys(env.pool, env.mint("SOL")).oracle
    )
    assert (oracle.price, oracle.expo, oracle.conf, oracle.ema) == (123_45, -2, 6, 123_00)
    assert oracle.publish_time == env.last_publish["SOL"]
    await env.set_price("SOL", 100_00)


async def test_publish_time_must_increase_and_not_be_in_the_future(env: PoolEnv) -> None:
    client = env.client
    await env.set_price("SOL", 100_00)
    last = env.last_publish["SOL"]
    await env.advance(5)
    now = await env.now()
    for when in (last, last - 1, now + 3_600, 2**63 - 1):
        ix = client.set_price_ix(
            env.pool,
            env.mint("SOL"),
            env.admin.pubkey(),
            price=100_00,
            expo=-2,
            conf=0,
            ema=100_00,
            publish_time=when,
        )
        await assert_rejected(client, [ix], error="InvalidPublishTime")
    # Strictly later and not ahead of the clock is fine.
    await env.set_price("SOL", 100_00, publish_time=now)
    assert (
        await client.fetch("CustomOracle", client.custody_keys(env.pool, env.mint("SOL")).oracle)
    ).publish_time == now


@pytest.mark.parametrize(
    ("price", "expo", "ema"),
    [
        pytest.param(0, -2, 100_00, id="zero price"),
        pytest.param(100_00, -2, 0, id="zero ema"),
        pytest.param(1, 19, 1, id="exponent 19"),
        pytest.param(1, -19, 1, id="exponent -19"),
        pytest.param(1, 2**31 - 1, 1, id="exponent i32 max"),
        pytest.param(1, -(2**31), 1, id="exponent i32 min"),
    ],
)
async def test_invalid_prices_are_rejected(env: PoolEnv, price: int, expo: int, ema: int) -> None:
    await env.advance(1)
    ix = env.client.set_price_ix(
        env.pool,
        env.mint("SOL"),
        env.admin.pubkey(),
        price=price,
        expo=expo,
        conf=0,
        ema=ema,
        publish_time=await env.now(),
    )
    await assert_rejected(env.client, [ix], error="InvalidOraclePrice")


@pytest.mark.parametrize(
    ("price", "expo"),
    [
        pytest.param(100_00, -2, id="cents"),
        pytest.param(100_000_000_000, -9, id="expo -9"),
        pytest.param(100 * 10**16, -16, id="expo -16"),
        pytest.param(100, 0, id="expo 0"),
        pytest.param(10, 1, id="expo 1"),
        pytest.param(1, 2, id="expo 2"),
    ],
)
async def test_exponents_are_valued_correctly(env: PoolEnv, price: int, expo: int) -> None:
    """$100 per SOL in any representation: the same oracle view and the same deposit value."""
    await env.set_price("SOL", price, expo=expo)
    try:
        view = await views.oracle_price(env.client, env.pool, env.mint("SOL"))
        assert (view.price, view.exponent, view.ema_price) == (price, expo, price)
        assert view.price_usd_e9 == 100 * 10**9
        quote = await views.add_liquidity_amount_and_fee(
            env.client, env.pool, env.mint("SOL"), 3 * SOL + 7
        )
        assert quote.deposit_usd == 300 * USD  # 7 lamports are worth $0.0000007: rounded down
    finally:
        await env.set_price("SOL", 100_00)


async def test_confidence_at_the_limit_is_accepted_and_one_unit_over_rejected(env: PoolEnv) -> None:
    client = env.client
    depositor = await env.new_wallet()
    funding = await env.fund(depositor.pubkey(), "SOL", 10 * SOL)
    lp_account = await env.lp_account(depositor.pubkey())
    # max_price_error_bps = 100: conf / price may reach 1%.
    price = 100 * 10**8
    await env.set_price("SOL", price, expo=-8, conf=price // 100)
    try:
        assert (await views.oracle_price(client, env.pool, env.mint("SOL"))).price == price
        await lp.add_liquidity(
            client,
            depositor,
            env.pool,
            env.mint("SOL"),
            SOL,
            funding_account=funding,
            lp_token_account=lp_account,
        )

        await env.set_price("SOL", price, expo=-8, conf=price // 100 + 1)
        assert (
            await view_error(views.oracle_price(client, env.pool, env.mint("SOL")))
            == "OracleConfidenceTooWide"
        )
        ix = await lp.add_liquidity_ix(
            client,
            depositor.pubkey(),
            env.pool,
            env.mint("SOL"),
            SOL,
            funding_account=funding,
            lp_token_account=lp_account,
        )
        await assert_rejected(
            client, [ix], [depositor], error="OracleConfidenceTooWide", watch=[funding, lp_account]
        )
        # Confidence of another custody of the pool counts too (AUM reads every oracle).
        await env.set_price("SOL", 100_00)
        await env.set_price("USDC", USD, conf=USD // 100 + 1)
        ix = await lp.add_liquidity_ix(
            client,
            depositor.pubkey(),
            env.pool,
            env.mint("SOL"),
            SOL,
            funding_account=funding,
            lp_token_account=lp_account,
        )
        await assert_rejected(
            client, [ix], [depositor], error="OracleConfidenceTooWide", watch=[funding, lp_account]
        )
    finally:
        await env.set_price("SOL", 100_00)
        await env.set_price("USDC", USD)


# ---- staleness ---------------------------------------------------------------------------------


@dataclass
class Trader:
    wallet: Keypair
    sol: Pubkey
    usdc: Pubkey
    lp: Pubkey


async def liquid_pool(env: PoolEnv) -> Trader:
    """A provider with liquidity in both custodies and tokens left to trade."""
    wallet = await env.new_wallet()
    sol = await env.fund(wallet.pubkey(), "SOL", 200 * SOL)
    usdc = await env.fund(wallet.pubkey(), "USDC", 20_000 * USDC)
    lp_account = await env.lp_account(wallet.pubkey())
    await env.refresh_prices()
    for symbol, account, amount in (("SOL", sol, 100 * SOL), ("USDC", usdc, 10_000 * USDC)):
        await lp.add_liquidity(
            env.client,
            wallet,
            env.pool,
            env.mint(symbol),
            amount,
            funding_account=account,
            lp_token_account=lp_account,
        )
    return Trader(wallet, sol, usdc, lp_account)


async def fresh_price_ixs(
    env: PoolEnv, symbols: tuple[str, ...] = ("SOL", "USDC"), **override: int
) -> list[Instruction]:
    """Price posts with the current time, to go in the same transaction as a trade."""
    now = await env.now()
    ixs = []
    for symbol in symbols:
        spec = env.specs[symbol]
        price = override.get(symbol, spec.price)
        ixs.append(
            env.client.set_price_ix(
                env.pool,
                env.mint(symbol),
                env.admin.pubkey(),
                price=price,
                expo=spec.expo,
                conf=0,
                ema=price,
                publish_time=now,
            )
        )
        env.last_publish[symbol] = now
    return ixs


async def test_stale_price_rejects_trades_until_a_fresh_post_in_the_same_transaction(
    env: PoolEnv,
) -> None:
    client = env.client
    t = await liquid_pool(env)
    sol, usdc = env.mint("SOL"), env.mint("USDC")
    market = trade.Market.long(env.pool, sol)
    watch = [t.sol, t.usdc, t.lp]
    await env.advance(MAX_AGE + 30)

    assert await view_error(views.oracle_price(client, env.pool, sol)) == "StaleOraclePrice"
    open_ix = open_position_ix(
        client,
        t.wallet.pubkey(),
        market,
        collateral_amount=SOL,
        size_usd=200 * USD,
        funding_account=t.sol,
    )
    swap = swap_ix(
        client,
        t.wallet.pubkey(),
        env.pool,
        usdc,
        sol,
        100 * USDC,
        funding_account=t.usdc,
        receiving_account=t.sol,
    )
    add = await lp.add_liquidity_ix(
        client,
        t.wallet.pubkey(),
        env.pool,
        usdc,
        100 * USDC,
        funding_account=t.usdc,
        lp_token_account=t.lp,
    )
    remove = await lp.remove_liquidity_ix(
        client,
        t.wallet.pubkey(),
        env.pool,
        sol,
        10 * USD,
        receiving_account=t.sol,
        lp_token_account=t.lp,
    )
    for ix in (open_ix, swap, add, remove):
        await assert_rejected(client, [ix], [t.wallet], error="StaleOraclePrice", watch=watch)
    # One fresh custody is not enough where both prices are read.
    await assert_rejected(
        client,
        [*await fresh_price_ixs(env, ("USDC",)), swap],
        [t.wallet],
        error="StaleOraclePrice",
        watch=watch,
    )

    for ix in (open_ix, swap, add, remove):
        await client.send([*await fresh_price_ixs(env), ix], [t.wallet])
        await env.advance(MAX_AGE + 1)
    position = await client.fetch("Position", trade.position_key(client, market, t.wallet.pubkey()))
    assert position.size_usd == 200 * USD


async def test_liquidation_of_a_stale_market_with_a_fresh_price_in_the_same_transaction(
    env: PoolEnv,
) -> None:
    client = env.client
    await liquid_pool(env)
    gambler = await env.new_wallet()
    gambler_sol = await env.fund(gambler.pubkey(), "SOL", SOL)
    keeper = await env.new_wallet()
    keeper_sol = await env.token_account(keeper.pubkey(), "SOL")
    market = trade.Market.long(env.pool, env.mint("SOL"))
    await env.refresh_prices()
    await client.send(
        [
            open_position_ix(
                client,
                gambler.pubkey(),
                market,
                collateral_amount=SOL // 10,
                size_usd=900 * USD,
                funding_account=gambler_sol,
            )
        ],
        [gambler],
    )
    await env.advance(MAX_AGE + 30)
    liquidate = liquidate_ix(
        client,
        keeper.pubkey(),
        market,
        gambler.pubkey(),
        receiving_account=keeper_sol,
        owner_receiving_account=gambler_sol,
    )
    await assert_rejected(
        client, [liquidate], [keeper], error="StaleOraclePrice", watch=[gambler_sol, keeper_sol]
    )
    # At a fresh $100 the 90x long is healthy; at a fresh $99.20 it is liquidated.
    await assert_rejected(
        client,
        [*await fresh_price_ixs(env, ("SOL",)), liquidate],
        [keeper],
        error="NotLiquidatable",
        watch=[gambler_sol, keeper_sol],
    )
    await env.advance(1)
    await client.send([*await fresh_price_ixs(env, ("SOL",), SOL=99_20), liquidate], [keeper])
    assert (
        await client.connection.get_account_info(
            trade.position_key(client, market, gambler.pubkey())
        )
    ).value is None
    await env.set_price("SOL", 100_00)


# ---- Pyth --------------------------------------------------------------------------------------


async def point_eth_at(oenv: OracleEnv, name: str, **overrides: Any) -> None:
    env = oenv.env
    config = pyth_config(env, oenv.pyth[name].address, **overrides)
    await env.client.set_custody_config(PYTH_POOL, oenv.eth.pubkey, config, env.admin)


async def eth_depositor(oenv: OracleEnv) -> Trader:
    env = oenv.env
    wallet = await env.new_wallet()
    eth = oenv.eth
    account = await eth.create_associated_token_account(wallet.pubkey())
    sig = (await eth.mint_to(account, env.admin, 10 * 10**ETH_DECIMALS)).value
    await env.client.connection.confirm_transaction(sig, sleep_seconds=0.05)
    lp_mint = AsyncToken(
        env.client.connection, pda.lp_token_mint(pda.pool(PYTH_POOL)), TOKEN_PROGRAM_ID, env.admin
    )
    lp_account = await lp_mint.create_associated_token_account(wallet.pubkey())
    return Trader(wallet, account, account, lp_account)


async def test_pyth_price_is_read_from_the_fixture(oenv: OracleEnv) -> None:
    env = oenv.env
    await point_eth_at(oenv, "good")
    view = await views.oracle_price(env.client, PYTH_POOL, oenv.eth.pubkey)
    assert (view.price, view.exponent, view.ema_price) == (3_000_00000000, -8, 2_990_00000000)
    assert view.price_usd_e9 == 3_000 * 10**9
    # A deposit is valued at the lower of spot and EMA: 1 ETH → $2990 of LP tokens, less the
    # locked LP this first deposit of the pool pays for.
    d = await eth_depositor(oenv)
    quote = await views.add_liquidity_amount_and_fee(
        env.client, PYTH_POOL, oenv.eth.pubkey, 10**ETH_DECIMALS
    )
    assert (quote.deposit_usd, quote.lp_amount) == (2_990 * USD, 2_989 * USD)
    await lp.add_liquidity(
        env.client,
        d.wallet,
        PYTH_POOL,
        oenv.eth.pubkey,
        10**ETH_DECIMALS,
        funding_account=d.sol,
        lp_token_account=d.lp,
    )
    assert await env.balance(d.lp) == 2_989 * USD


async def test_pyth_positive_exponent(oenv: OracleEnv) -> None:
    env = oenv.env
    await point_eth_at(oenv, "positive_expo")
    try:
        view = await views.oracle_price(env.client, PYTH_POOL, oenv.eth.pubkey)
        assert (view.price, view.exponent) == (3, 3)
        assert view.price_usd_e9 == 3_000 * 10**9
        quote = await views.add_liquidity_amount_and_fee(
            env.client, PYTH_POOL, oenv.eth.pubkey, 10**ETH_DECIMALS
        )
        assert quote.deposit_usd == 3_000 * USD
    finally:
        await point_eth_at(oenv, "good")


async def test_pyth_confidence_at_the_limit_is_accepted(oenv: OracleEnv) -> None:
    await point_eth_at(oenv, "conf_at_limit")
    try:
        assert (
            await views.oracle_price(oenv.env.client, PYTH_POOL, oenv.eth.pubkey)
        ).price == 3_000_00000000
    finally:
        await point_eth_at(oenv, "good")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("wrong_feed", "WrongPythFeed"),
        ("wrong_owner", "InvalidOracleAccount"),
        ("partial", "UnverifiedPythPrice"),
        ("future", "InvalidPublishTime"),
        ("stale", "StaleOraclePrice"),
        ("zero_price", "InvalidOraclePrice"),
        ("negative_price", "InvalidOraclePrice"),
        ("wide_conf", "OracleConfidenceTooWide"),
        ("bad_discriminator", "InvalidOracleAccount"),
        ("expo_i32_min", "InvalidOraclePrice"),
        ("expo_19", "InvalidOraclePrice"),
    ],
)
async def test_bad_pyth_accounts_are_rejected(oenv: OracleEnv, name: str, error: str) -> None:
    env = oenv.env
    d = await eth_depositor(oenv)
    await point_eth_at(oenv, name)
    try:
        assert await view_error(views.oracle_price(env.client, PYTH_POOL, oenv.eth.pubkey)) == error
        ix = await lp.add_liquidity_ix(
            env.client,
            d.wallet.pubkey(),
            PYTH_POOL,
            oenv.eth.pubkey,
            10**ETH_DECIMALS,
            funding_account=d.sol,
            lp_token_account=d.lp,
        )
        await assert_rejected(env.client, [ix], [d.wallet], error=error, watch=[d.sol, d.lp])
    finally:
        await point_eth_at(oenv, "good")


async def test_pyth_custody_only_accepts_its_configured_account(oenv: OracleEnv) -> None:
    env = oenv.env
    await point_eth_at(oenv, "good")
    other = oenv.pyth["conf_at_limit"].address
    assert (
        await view_error(views.oracle_price(env.client, PYTH_POOL, oenv.eth.pubkey, oracle=other))
        == "InvalidOracleAccount"
    )
    # The custody's feed id decides, even for an otherwise valid account of another feed.
    await point_eth_at(oenv, "good", feed_id=OTHER_FEED)
    try:
        assert (
            await view_error(views.oracle_price(env.client, PYTH_POOL, oenv.eth.pubkey))
            == "WrongPythFeed"
        )
    finally:
        await point_eth_at(oenv, "good")
