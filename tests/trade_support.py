"""Helpers shared by the trading integration tests (test_trading, test_borrow, test_liquidation).

Expectations in those tests are computed independently from DESIGN §4's formulas with plain
integer arithmetic (``floor``/``ceil`` helpers below), never with ``perpool.math``, so the tests
check the program rather than a copy of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from pool_env import DEFAULT_TOKENS, PoolEnv, TokenSpec
from rejections import Failure, assert_rejected
from solana.rpc.commitment import Confirmed
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID

from perpool import lp, trade
from perpool.client import ViewError
from perpool.invariants import check_pool
from perpool.localnet import LocalnetRpc
from perpool.program import PROGRAM_ID, error_names, parse_events
from perpool.trade import LONG, Market

USD = 1_000_000
"""$1 in USD units (6 decimals)."""
BPS = 10_000
RATE_ONE = 1_000_000_000
U64_MAX = 2**64 - 1
SOL = 1_000_000_000
"""One SOL in base units (9 decimals)."""
USDC = 1_000_000
"""One USDC in base units (6 decimals)."""
PRICE_9DP = 1_000_000_000
"""$1 per whole token as a stored (entry/exit) price with 9 decimals."""


def floor_div(a: int, b: int) -> int:
    return a // b


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def pow10(exp: int) -> int:
    """``10**exp`` for ``exp >= 0`` (as an int for the type checker)."""
    assert exp >= 0
    return int(10**exp)


def usd_of(amount: int, decimals: int, price: int, expo: int) -> int:
    """USD units (6 dp) of ``amount`` base units at ``price * 10^expo``, rounded down."""
    num = amount * price * pow10(max(0, expo + 6 - decimals))
    return num // pow10(max(0, decimals - 6 - expo))


def usd_ceil(amount: int, decimals: int, price: int, expo: int) -> int:
    """USD units of ``amount`` base units, rounded up."""
    num = amount * price * pow10(max(0, expo + 6 - decimals))
    return ceil_div(num, pow10(max(0, decimals - 6 - expo)))


def tokens_floor(usd: int, decimals: int, price: int, expo: int) -> int:
    """Base units worth ``usd`` (6 dp) at ``price * 10^expo``, rounded down (what is paid out)."""
    num = usd * pow10(max(0, decimals - 6 - expo))
    return num // (price * pow10(max(0, expo + 6 - decimals)))


def tokens_ceil(usd: int, decimals: int, price: int, expo: int) -> int:
    """Base units worth ``usd``, rounded up (what a trader must bring)."""
    num = usd * pow10(max(0, decimals - 6 - expo))
    return ceil_div(num, price * pow10(max(0, expo + 6 - decimals)))


def price_9dp(price: int, expo: int) -> int:
    """Exact 9-decimal price (the tests only use exponents >= -9)."""
    return price * pow10(expo + 9)


# --------------------------------------------------------------------------------------------
# Pools, wallets, positions
# --------------------------------------------------------------------------------------------


async def add_pool(
    env: PoolEnv,
    name: str,
    tokens: tuple[TokenSpec, ...] = DEFAULT_TOKENS,
    configs: dict[str, dict[str, Any]] | None = None,
) -> PoolEnv:
    """A second (third, ...) pool on the same chain with its own new mints, so a test can start
    from an empty pool (exact utilization). The program allows 32 pools per chain. Custodies
    are added with ``configs[symbol]`` overrides of the default config, if given."""
    client, admin = env.client, env.admin
    pool = dataclasses.replace(
        env, specs={t.symbol: t for t in tokens}, mints={}, last_publish={}, pool=name
    )
    await client.add_pool(name, admin, env.approvers)
    for spec in tokens:
        pool.mints[spec.symbol] = await AsyncToken.create_mint(
            client.connection, admin, admin.pubkey(), spec.decimals, TOKEN_PROGRAM_ID
        )
        config = pool.config(spec.symbol, **(configs or {}).get(spec.symbol, {}))
        await client.add_custody(
            name, pool.mint(spec.symbol), spec.stable, config, admin, env.approvers
        )
        await pool.set_price(spec.symbol, spec.price)
    return pool


def long_market(env: PoolEnv, symbol: str = "SOL") -> Market:
    return Market.long(env.pool, env.mint(symbol))


def short_market(env: PoolEnv, symbol: str = "SOL", stable: str = "USDC") -> Market:
    return Market.short(env.pool, env.mint(symbol), env.mint(stable))


@dataclass
class Trader:
    wallet: Keypair
    accounts: dict[str, Pubkey]

    @property
    def key(self) -> Pubkey:
        return self.wallet.pubkey()


async def new_trader(env: PoolEnv, **funds: int) -> Trader:
    """A wallet with 10 SOL of lamports and a token account per pool token, funded with
    ``funds[symbol]`` base units."""
    wallet = await env.new_wallet()
    accounts = {}
    for symbol in env.specs:
        amount = funds.get(symbol, 0)
        if amount:
            accounts[symbol] = await env.fund(wallet.pubkey(), symbol, amount)
        else:
            accounts[symbol] = await env.token_account(wallet.pubkey(), symbol)
    return Trader(wallet, accounts)


async def provide_liquidity(env: PoolEnv, symbol: str, amount: int) -> Trader:
    """Deposits ``amount`` base units of ``symbol`` into the pool from a new LP wallet."""
    provider = await new_trader(env, **{symbol: amount})
    lp_account = await env.lp_account(provider.key)
    await lp.add_liquidity(
        env.client,
        provider.wallet,
        env.pool,
        env.mint(symbol),
        amount,
        funding_account=provider.accounts[symbol],
        lp_token_account=lp_account,
    )
    return provider


def collateral_symbol(env: PoolEnv, market: Market) -> str:
    return next(s for s in env.specs if env.mint(s) == market.collateral_mint)


async def open_position(
    env: PoolEnv,
    trader: Trader,
    market: Market,
    *,
    collateral: int,
    size_usd: int,
    price_limit: int | None = None,
) -> Signature:
    """Opens with a price limit that never binds unless one is given."""
    if price_limit is None:
        price_limit = U64_MAX if market.side == LONG else 0
    return await trade.open_position(
        env.client,
        trader.wallet,
        market,
        collateral_amount=collateral,
        size_usd=size_usd,
        price_limit=price_limit,
        funding_account=trader.accounts[collateral_symbol(env, market)],
    )


async def close_position(
    env: PoolEnv,
    trader: Trader,
    market: Market,
    *,
    close_bps: int = BPS,
    price_limit: int | None = None,
) -> Signature:
    if price_limit is None:
        price_limit = 0 if market.side == LONG else U64_MAX
    return await trade.close_position(
        env.client,
        trader.wallet,
        market,
        price_limit=price_limit,
        receiving_account=trader.accounts[collateral_symbol(env, market)],
        close_bps=close_bps,
    )


def position_key(env: PoolEnv, market: Market, owner: Pubkey) -> Pubkey:
    return trade.position_key(env.client, market, owner)


async def position(env: PoolEnv, market: Market, owner: Pubkey) -> Any:
    return await env.client.fetch("Position", position_key(env, market, owner))


async def account_exists(env: PoolEnv, key: Pubkey) -> bool:
    return (await env.client.connection.get_account_info(key, Confirmed)).value is not None


async def lamports(env: PoolEnv, key: Pubkey) -> int:
    return (await env.client.connection.get_balance(key, Confirmed)).value


async def vault_balance(env: PoolEnv, symbol: str) -> int:
    return await env.balance(env.client.custody_keys(env.pool, env.mint(symbol)).token_account)


async def set_prices(env: PoolEnv, **prices: int) -> None:
    """Posts the given prices (token exponent, EMA = spot) and re-posts the others, so none is
    stale."""
    for symbol in env.specs:
        await post_price(
            env, symbol, prices[symbol] if symbol in prices else await _current(env, symbol)
        )


async def post_price(env: PoolEnv, symbol: str, price: int, **kwargs: int) -> None:
    """``env.set_price`` with a publish time strictly after the last one: when the confirmed
    clock has not moved past it yet, the clock is advanced just past it and this waits until the
    confirmed bank shows it (``PoolEnv.set_price`` re-reads the confirmed clock right after
    advancing the working bank's, which can still show the old second)."""
    last = env.last_publish.get(symbol, 0)
    now = await confirmed_clock(env)
    if now <= last:
        await env.advance(last - now + 1)
        await wait_confirmed_clock(env, last + 1)
    await env.set_price(symbol, price, **kwargs)


async def _current(env: PoolEnv, symbol: str) -> int:
    oracle = await env.client.fetch(
        "CustomOracle", env.client.custody_keys(env.pool, env.mint(symbol)).oracle
    )
    assert oracle.expo == env.specs[symbol].expo, "set_prices assumes the token's own exponent"
    price: int = oracle.price
    return price


async def events(env: PoolEnv, signature: Signature) -> list[Any]:
    resp = await env.client.connection.get_transaction(
        signature, commitment=Confirmed, max_supported_transaction_version=0
    )
    assert resp.value is not None
    meta = resp.value.transaction.meta
    assert meta is not None
    assert meta.log_messages is not None
    return parse_events(env.client.program, meta.log_messages)


async def block_time(env: PoolEnv, signature: Signature) -> int:
    """The Clock ``unix_timestamp`` of the block that executed ``signature``."""
    resp = await env.client.connection.get_transaction(
        signature, commitment=Confirmed, max_supported_transaction_version=0
    )
    assert resp.value is not None
    assert resp.value.block_time is not None
    return int(resp.value.block_time)


# --------------------------------------------------------------------------------------------
# Rejections: the named error, and nothing changed
# --------------------------------------------------------------------------------------------


async def rejected(
    env: PoolEnv,
    ixs: Sequence[Instruction],
    signers: Sequence[Keypair],
    error: str,
    *,
    watch: Sequence[Pubkey] = (),
) -> Failure:
    """SECURITY.md's "rejected": the transaction fails (in preflight and landed on chain) with
    the named error (whose code is that name's in the IDL, for the program's own errors), and
    no program account, vault, LP mint or watched account changes."""
    failure = await assert_rejected(env.client, ixs, signers, error=error, watch=watch)
    assert failure.code is not None
    if failure.code >= ANCHOR_USER_ERRORS:
        assert error_names(env.client.program.idl)[failure.code] == error
    return failure


ANCHOR_USER_ERRORS = 6000
"""Codes below are Anchor's own (ConstraintSeeds, AccountNotSigner, ...), named in the logs."""


def without_signer(ix: Instruction, key: Pubkey) -> Instruction:
    """``ix`` with ``key`` marked as not signing (a missing-signer attack)."""
    metas = [
        AccountMeta(m.pubkey, is_signer=False, is_writable=m.is_writable) if m.pubkey == key else m
        for m in ix.accounts
    ]
    return Instruction(ix.program_id, ix.data, metas)


async def view_rejected(env: PoolEnv, view: Awaitable[object], error: str) -> None:
    """A view's simulation fails with the named program error."""
    with pytest.raises(ViewError) as excinfo:
        await view
    logs = excinfo.value.logs
    marker = f"Program {PROGRAM_ID} failed: custom program error: "
    codes = [int(line[len(marker) :], 16) for line in logs if line.startswith(marker)]
    assert codes, logs
    assert error_names(env.client.program.idl)[codes[0]] == error, logs
    assert any(f"Error Code: {error}." in line for line in logs), logs


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


async def assert_conserved(env: PoolEnv) -> None:
    """For every custody of the pool: vault == owned + collateral + protocol_fees + insurance and
    0 <= locked <= owned; the side totals equal the sums over the open positions
    (:func:`perpool.invariants.check_pool`)."""
    report = await check_pool(env.client, env.pool, names={env.mint(s): s for s in env.specs})
    assert report.ok, [str(v) for v in report.violations]
    assert {c.name for c in report.custodies} == set(env.specs)


# --------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------


async def early_in_second(start: float = 0.15, end: float = 0.35) -> None:
    """Waits until the wall clock is ``start``..``end`` seconds into a second.

    The localnet's Clock is whole seconds of wall time plus the offset ``localnet_setClock``
    adjusts, taken when a bank (100 ms slot) is created. Setting the clock a little after a
    second began (once the current bank belongs to that second) leaves most of a second in which
    every new bank shows exactly the time set.
    """
    frac = time.time() % 1
    if frac < start:
        await asyncio.sleep(start - frac)
    elif frac > end:
        await asyncio.sleep(1 - frac + start)


async def confirmed_clock(env: PoolEnv) -> int:
    async with LocalnetRpc(env.url) as rpc:
        return (await rpc.get_clock("confirmed")).unix_timestamp


async def set_clock(env: PoolEnv, timestamp: int) -> None:
    async with LocalnetRpc(env.url) as rpc:
        await rpc.set_clock(timestamp)


async def wait_confirmed_clock(env: PoolEnv, timestamp: int, timeout: float = 5.0) -> int:
    """Polls until the confirmed bank's Clock reached ``timestamp``; returns what it shows."""
    deadline = time.monotonic() + timeout
    while True:
        now = await confirmed_clock(env)
        if now >= timestamp or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.02)
