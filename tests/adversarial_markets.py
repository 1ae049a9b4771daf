"""Fresh pools ("desks") and instruction builders for the adversarial oracle, manipulation,
overflow and risk-limit modules (``tests/adversarial``).

A *desk* is a pool of its own on the world's chain with the world's five custodies (SOL, ETH,
USDC, USDT and the ETH² payoff market), liquidity in every token and one trader holding a
position in every market plus LP tokens, so a test can move its prices, clock-dependent limits
and configs without disturbing the world. The builders return every instruction that reads a
price (trades, LP actions, swaps, liquidations, the AUM crank and the views) as :class:`Case`
values; :func:`reads` tells which oracles an instruction reads, so a table can be filtered per
token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from adversary import ETH, SOL, TOKENS, USD, USDC, USDT, World, symbol_of
from pool_env import PoolEnv, TokenSpec
from solana.rpc.commitment import Confirmed
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    MintToParams,
    create_associated_token_account,
    get_associated_token_address,
    mint_to,
)
from trade_support import RATE_ONE, Trader, add_pool

from perpool import lp, pda, trade
from perpool.client import ViewError
from perpool.trade import LONG, SHORT, Market

BPS = 10_000
I64_MAX = 2**63 - 1
I64_MIN = -(2**63)
U64_MAX = 2**64 - 1
HOUR = 3_600

SPECS: dict[str, TokenSpec] = {t.symbol: t for t in TOKENS}
TOKEN_SYMBOLS = ("SOL", "ETH", "USDC", "USDT")
"""The custodies that hold tokens (ETHSQ is synthetic)."""
MARKET_KEYS = ("long_sol", "short_sol", "long_eth", "short_eth", "long_ethsq")
SWAP_PAIRS = (("SOL", "USDC"), ("USDC", "SOL"), ("ETH", "USDT"), ("USDT", "ETH"))

PAYOFF: dict[str, Any] = {
    "payoff": "square",
    "payoff_scale": RATE_ONE // 1_000,
    "max_profit_bps": BPS,
}
"""ETH² at k = 0.001: $1000 per unit at an oracle price of $1000; wins at most its size."""

OPEN_AMOUNTS: dict[str, tuple[int, int]] = {
    "long_sol": (2 * SOL, 1_000 * USD),
    "short_sol": (200 * USDC, 1_000 * USD),
    "long_eth": (ETH // 10, 1_500 * USD),
    "short_eth": (300 * USDT, 1_500 * USD),
    "long_ethsq": (200 * USDC, 1_000 * USD),
}
"""Collateral and size of the desk trader's positions (5x at the initial prices) and of the
opens the builders make."""

LIQUIDITY = {"SOL": 1_000 * SOL, "ETH": 30 * ETH, "USDC": 100_000 * USDC, "USDT": 100_000 * USDT}
"""A desk's LP deposits ($100k of SOL, $90k of ETH, $100k of each stable)."""
ADD_COLLATERAL = {"SOL": SOL // 100, "ETH": ETH // 1_000, "USDC": 10 * USDC, "USDT": 10 * USDT}
"""Collateral top-ups of the builders (a few dollars)."""
LP_AMOUNTS = {"SOL": SOL, "ETH": ETH // 10, "USDC": 100 * USDC, "USDT": 100 * USDT}
"""Deposits and swap inputs of the builders (a few hundred dollars)."""


def markets_of(env: PoolEnv) -> dict[str, Market]:
    """The five markets of a pool with the world's custodies."""
    return {
        "long_sol": Market.long(env.pool, env.mint("SOL")),
        "short_sol": Market.short(env.pool, env.mint("SOL"), env.mint("USDC")),
        "long_eth": Market.long(env.pool, env.mint("ETH")),
        "short_eth": Market.short(env.pool, env.mint("ETH"), env.mint("USDT")),
        "long_ethsq": Market.payoff(env.pool, env.mint("ETHSQ"), env.mint("USDC"), LONG),
    }


def short_ethsq(env: PoolEnv) -> Market:
    return Market.payoff(env.pool, env.mint("ETHSQ"), env.mint("USDC"), SHORT)


def collateral_of(env: PoolEnv, market: Market) -> str:
    return symbol_of(env, market.collateral_mint)


# ------------------------------------------------------------------------------------------
# Desks
# ------------------------------------------------------------------------------------------


async def add_configured_pool(
    env: PoolEnv,
    name: str,
    tokens: Sequence[TokenSpec] = TOKENS,
    configs: dict[str, dict[str, Any]] | None = None,
) -> PoolEnv:
    """A new pool on ``env``'s chain with its own mints (the world's tokens by default), each
    custody created with ``configs[symbol]`` over the defaults (a payoff market's payoff is
    fixed at creation)."""
    return await add_pool(env, name, tuple(tokens), configs)


def desk_configs(
    common: dict[str, Any] | None = None, **per_symbol: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Configs of the five desk custodies: ``common`` for all, the payoff for ETHSQ, then
    ``per_symbol`` overrides."""
    base = common or {}
    configs = {s: dict(base) for s in SPECS}
    configs["ETHSQ"] |= PAYOFF
    for symbol, overrides in per_symbol.items():
        configs[symbol] |= overrides
    return configs


@dataclass
class Desk:
    env: PoolEnv
    lp: Trader
    trader: Trader
    """Holds a position in every market of ``markets`` and LP tokens."""
    newcomer: Trader
    """Funded in every token, without positions or LP tokens."""
    lp_accounts: dict[str, Pubkey]
    markets: dict[str, Market]

    def watch(self) -> list[Pubkey]:
        keys: list[Pubkey] = []
        for t in (self.lp, self.trader, self.newcomer):
            keys.append(t.key)
            keys.extend(t.accounts.values())
        keys.extend(self.lp_accounts.values())
        return keys


async def funded_trader(env: PoolEnv, **funds: int) -> Trader:
    """A wallet with a token account for every pool token, funded with ``funds[symbol]``: one
    transaction (``trade_support.new_trader`` sends one per account)."""
    wallet = await env.new_wallet()
    owner = wallet.pubkey()
    admin = env.admin.pubkey()
    ixs: list[Instruction] = []
    accounts: dict[str, Pubkey] = {}
    for symbol in env.specs:
        mint = env.mint(symbol)
        accounts[symbol] = get_associated_token_address(owner, mint)
        ixs.append(create_associated_token_account(admin, owner, mint))
        if funds.get(symbol):
            ixs.append(
                mint_to(
                    MintToParams(
                        program_id=TOKEN_PROGRAM_ID,
                        mint=mint,
                        dest=accounts[symbol],
                        mint_authority=admin,
                        amount=funds[symbol],
                    )
                )
            )
    await env.client.send(ixs)
    return Trader(wallet, accounts)


async def fund_trader(env: PoolEnv, scale: int = 1) -> Trader:
    return await funded_trader(
        env,
        SOL=100 * SOL * scale,
        ETH=10 * ETH * scale,
        USDC=100_000 * USDC * scale,
        USDT=100_000 * USDT * scale,
    )


async def build_desk(
    world: World,
    name: str,
    configs: dict[str, dict[str, Any]] | None = None,
    *,
    liquidity: dict[str, int] | None = None,
    positions: Iterable[str] = MARKET_KEYS,
) -> Desk:
    """A fresh pool ``name`` with the world's custodies (``configs`` from :func:`desk_configs`),
    ``liquidity`` from an LP, a trader with ``positions`` (amounts of :data:`OPEN_AMOUNTS`) and
    $10,000 of LP tokens, and a funded newcomer."""
    env = await add_configured_pool(world.env, name, TOKENS, configs or desk_configs())
    client = env.client
    funds = liquidity or LIQUIDITY
    provider = await funded_trader(env, **funds)
    lp_accounts = {"lp": await env.lp_account(provider.key)}
    deposits = [
        await lp.add_liquidity_ix(
            client,
            provider.key,
            env.pool,
            env.mint(symbol),
            amount,
            funding_account=provider.accounts[symbol],
            lp_token_account=lp_accounts["lp"],
        )
        for symbol, amount in funds.items()
    ]
    # Two deposits per transaction: each names every custody and oracle of the pool.
    for start in range(0, len(deposits), 2):
        await client.send(deposits[start : start + 2], [provider.wallet])
    markets = markets_of(env)
    trader = await fund_trader(env)
    opens = [
        trade.open_position_ix(
            client,
            trader.key,
            markets[key],
            collateral_amount=OPEN_AMOUNTS[key][0],
            size_usd=OPEN_AMOUNTS[key][1],
            funding_account=trader.accounts[collateral_of(env, markets[key])],
        )
        for key in positions
    ]
    for start in range(0, len(opens), 2):
        await client.send(opens[start : start + 2], [trader.wallet])
    lp_accounts["trader"] = await env.lp_account(trader.key)
    await lp.add_liquidity(
        client,
        trader.wallet,
        env.pool,
        env.mint("USDC"),
        10_000 * USDC,
        funding_account=trader.accounts["USDC"],
        lp_token_account=lp_accounts["trader"],
    )
    newcomer = await fund_trader(env)
    return Desk(env, provider, trader, newcomer, lp_accounts, markets)


# ------------------------------------------------------------------------------------------
# Prices
# ------------------------------------------------------------------------------------------


def price_ix(
    env: PoolEnv,
    symbol: str,
    publish_time: int,
    *,
    price: int | None = None,
    expo: int | None = None,
    conf: int = 0,
    ema: int | None = None,
) -> Instruction:
    """``set_custom_oracle_price`` for ``symbol`` by the oracle authority (the admin); the
    token's initial price and exponent unless given."""
    spec = env.specs[symbol]
    value = spec.price if price is None else price
    return env.client.set_price_ix(
        env.pool,
        env.mint(symbol),
        env.admin.pubkey(),
        price=value,
        expo=spec.expo if expo is None else expo,
        conf=conf,
        ema=value if ema is None else ema,
        publish_time=publish_time,
    )


async def fresh_price_ixs(env: PoolEnv, symbols: Iterable[str], **prices: int) -> list[Instruction]:
    """Price posts stamped with the current clock, to go in one transaction with a trade.
    ``env.last_publish`` is not updated: the caller records it if the transaction lands."""
    now = await env.now()
    return [price_ix(env, s, now, price=prices.get(s)) for s in symbols]


async def oracle_state(env: PoolEnv, symbol: str) -> Any:
    return await env.client.fetch(
        "CustomOracle", env.client.custody_keys(env.pool, env.mint(symbol)).oracle
    )


# ------------------------------------------------------------------------------------------
# Instruction builders
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    label: str
    ix: Instruction
    signers: tuple[Keypair, ...] = ()

    @property
    def name(self) -> str:
        return self.label.split(" ", 1)[0]


def reads(case: Case, key: Pubkey) -> bool:
    """Whether ``key`` (an oracle) is among the instruction's accounts, fixed or remaining."""
    return any(meta.pubkey == key for meta in case.ix.accounts)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def fixed_accounts(client: Any, ix_name: str) -> list[str]:
    """The instruction's fixed accounts (snake_case, in order); remaining accounts follow."""
    (idl_ix,) = [i for i in client.program.idl.instructions if i.name == _camel(ix_name)]
    return [_snake(a.name) for a in idl_ix.accounts]


def oracle_key(env: PoolEnv, symbol: str) -> Pubkey:
    return env.client.custody_keys(env.pool, env.mint(symbol)).oracle


def open_cases(env: PoolEnv, markets: dict[str, Market], opener: Trader) -> list[Case]:
    """An open of every market in ``markets`` (amounts of :data:`OPEN_AMOUNTS`)."""
    out = []
    for key, market in markets.items():
        collateral, size = OPEN_AMOUNTS[key]
        ix = trade.open_position_ix(
            env.client,
            opener.key,
            market,
            collateral_amount=collateral,
            size_usd=size,
            funding_account=opener.accounts[collateral_of(env, market)],
        )
        out.append(Case(f"open_position {key}", ix, (opener.wallet,)))
    return out


def position_cases(env: PoolEnv, markets: dict[str, Market], owner: Trader) -> list[Case]:
    """Full and half close, add and remove collateral of the owner's position in each market."""
    out = []
    for key, market in markets.items():
        receiving = owner.accounts[collateral_of(env, market)]
        top_up = ADD_COLLATERAL[collateral_of(env, market)]
        signers = (owner.wallet,)
        out += [
            Case(
                f"close_position {key}",
                trade.close_position_ix(env.client, owner.key, market, receiving_account=receiving),
                signers,
            ),
            Case(
                f"close_position {key} half",
                trade.close_position_ix(
                    env.client, owner.key, market, receiving_account=receiving, close_bps=5_000
                ),
                signers,
            ),
            Case(
                f"add_collateral {key}",
                trade.add_collateral_ix(
                    env.client, owner.key, market, top_up, funding_account=receiving
                ),
                signers,
            ),
            Case(
                f"remove_collateral {key}",
                trade.remove_collateral_ix(
                    env.client, owner.key, market, 10 * USD, receiving_account=receiving
                ),
                signers,
            ),
        ]
    return out


def liquidation_cases(
    env: PoolEnv, markets: dict[str, Market], liquidator: Trader, owner: Trader
) -> list[Case]:
    out = []
    for key, market in markets.items():
        symbol = collateral_of(env, market)
        ix = trade.liquidate_ix(
            env.client,
            liquidator.key,
            market,
            owner.key,
            receiving_account=liquidator.accounts[symbol],
            owner_receiving_account=owner.accounts[symbol],
        )
        out.append(Case(f"liquidate {key}", ix, (liquidator.wallet,)))
    return out


async def lp_cases(
    env: PoolEnv, trader: Trader, lp_account: Pubkey, symbols: Iterable[str] = TOKEN_SYMBOLS
) -> list[Case]:
    out = []
    for symbol in symbols:
        add = await lp.add_liquidity_ix(
            env.client,
            trader.key,
            env.pool,
            env.mint(symbol),
            LP_AMOUNTS[symbol],
            funding_account=trader.accounts[symbol],
            lp_token_account=lp_account,
        )
        remove = await lp.remove_liquidity_ix(
            env.client,
            trader.key,
            env.pool,
            env.mint(symbol),
            10 * USD,
            receiving_account=trader.accounts[symbol],
            lp_token_account=lp_account,
        )
        out += [
            Case(f"add_liquidity {symbol}", add, (trader.wallet,)),
            Case(f"remove_liquidity {symbol}", remove, (trader.wallet,)),
        ]
    return out


def swap_cases(
    env: PoolEnv, trader: Trader, pairs: Iterable[tuple[str, str]] = SWAP_PAIRS
) -> list[Case]:
    out = []
    for src, dst in pairs:
        ix = trade.swap_ix(
            env.client,
            trader.key,
            env.pool,
            env.mint(src),
            env.mint(dst),
            LP_AMOUNTS[src],
            funding_account=trader.accounts[src],
            receiving_account=trader.accounts[dst],
        )
        out.append(Case(f"swap {src}->{dst}", ix, (trader.wallet,)))
    return out


async def crank_cases(env: PoolEnv) -> list[Case]:
    ix = env.client.ix(
        "update_pool_aum",
        accounts={"pool": pda.pool(env.pool)},
        remaining=await env.client.pool_remaining_accounts(env.pool),
    )
    return [Case("update_pool_aum", ix)]


def _position_view_accounts(env: PoolEnv, market: Market, owner: Pubkey) -> dict[str, Pubkey]:
    accounts = trade.market_accounts(env.client, market)
    return {
        "perpool": accounts["perpool"],
        "pool": accounts["pool"],
        "position": trade.position_key(env.client, market, owner),
        "custody": accounts["custody"],
        "custody_oracle": accounts["custody_oracle"],
        "collateral_custody": accounts["collateral_custody"],
        "collateral_custody_oracle": accounts["collateral_custody_oracle"],
    }


def _pair_accounts(env: PoolEnv, symbol: str, other: str) -> dict[str, Pubkey]:
    a = env.client.custody_keys(env.pool, env.mint(symbol))
    b = env.client.custody_keys(env.pool, env.mint(other))
    return {
        "perpool": pda.perpool(),
        "pool": a.pool,
        "custody": a.custody,
        "custody_oracle": a.oracle,
        "other_custody": b.custody,
        "other_custody_oracle": b.oracle,
    }


def _custody_view_accounts(env: PoolEnv, symbol: str) -> dict[str, Pubkey]:
    keys = env.client.custody_keys(env.pool, env.mint(symbol))
    return {
        "perpool": pda.perpool(),
        "pool": keys.pool,
        "custody": keys.custody,
        "custody_oracle": keys.oracle,
        "lp_token_mint": pda.lp_token_mint(keys.pool),
    }


async def view_cases(
    env: PoolEnv,
    markets: dict[str, Market],
    owner: Trader,
    symbols: Iterable[str] = (*TOKEN_SYMBOLS, "ETHSQ"),
) -> list[Case]:
    """Every view instruction as a transaction: the oracle price of each token, the pool views,
    the LP quotes of each token custody, the swap quotes, and the quotes over ``owner``'s
    position in each market."""
    client = env.client
    pool_key = pda.pool(env.pool)
    remaining = await client.pool_remaining_accounts(env.pool)
    pool_accounts = {
        "perpool": pda.perpool(),
        "pool": pool_key,
        "lp_token_mint": pda.lp_token_mint(pool_key),
    }
    out = []
    for symbol in symbols:
        accounts = _custody_view_accounts(env, symbol)
        out.append(
            Case(f"get_oracle_price {symbol}", client.ix("get_oracle_price", accounts=accounts))
        )
        if symbol in TOKEN_SYMBOLS:
            for name, amount in (
                ("get_add_liquidity_amount_and_fee", LP_AMOUNTS[symbol]),
                ("get_remove_liquidity_amount_and_fee", 10 * USD),
            ):
                ix = client.ix(name, amount, accounts=accounts, remaining=remaining)
                out.append(Case(f"{name} {symbol}", ix))
    for name in ("get_lp_token_price", "get_assets_under_management"):
        out.append(Case(name, client.ix(name, accounts=pool_accounts, remaining=remaining)))
    for src, dst in SWAP_PAIRS[::2]:
        ix = client.ix(
            "get_swap_amount_and_fees", LP_AMOUNTS[src], accounts=_pair_accounts(env, src, dst)
        )
        out.append(Case(f"get_swap_amount_and_fees {src}->{dst}", ix))
    for key, market in markets.items():
        collateral, size = OPEN_AMOUNTS[key]
        params = {
            "collateral_amount": collateral,
            "size_usd": size,
            "side": trade.side_arg(client, market.side),
        }
        traded = symbol_of(env, market.mint)
        ix = client.ix(
            "get_entry_price_and_fee",
            params,
            accounts=_pair_accounts(env, traded, collateral_of(env, market)),
        )
        out.append(Case(f"get_entry_price_and_fee {key}", ix))
        accounts = _position_view_accounts(env, market, owner.key)
        out += [
            Case(
                f"get_exit_price_and_fee {key}",
                client.ix("get_exit_price_and_fee", BPS, accounts=accounts),
            ),
            Case(f"get_pnl {key}", client.ix("get_pnl", accounts=accounts)),
            Case(
                f"get_liquidation_price {key}",
                client.ix("get_liquidation_price", accounts=accounts),
            ),
            Case(
                f"get_liquidation_state {key}",
                client.ix("get_liquidation_state", accounts=accounts),
            ),
        ]
    return out


def with_remaining_accounts(
    client: Any, ix_name: str, ix: Instruction, remaining: Sequence[AccountMeta]
) -> Instruction:
    """``ix`` with its remaining accounts replaced."""
    fixed = len(fixed_accounts(client, ix_name))
    return Instruction(ix.program_id, ix.data, [*ix.accounts[:fixed], *remaining])


def with_fixed_account(client: Any, case: Case, account: str, key: Pubkey) -> Instruction:
    """``case.ix`` with the named fixed account replaced by ``key`` (flags kept)."""
    index = fixed_accounts(client, case.name).index(account)
    metas = list(case.ix.accounts)
    metas[index] = AccountMeta(key, metas[index].is_signer, metas[index].is_writable)
    return Instruction(case.ix.program_id, case.ix.data, metas)


__all__ = [
    "ADD_COLLATERAL",
    "BPS",
    "HOUR",
    "I64_MAX",
    "I64_MIN",
    "LIQUIDITY",
    "LP_AMOUNTS",
    "MARKET_KEYS",
    "OPEN_AMOUNTS",
    "PAYOFF",
    "SPECS",
    "SWAP_PAIRS",
    "TOKEN_SYMBOLS",
    "U64_MAX",
    "Case",
    "Desk",
    "add_configured_pool",
    "build_desk",
    "collateral_of",
    "crank_cases",
    "desk_configs",
    "fixed_accounts",
    "fresh_price_ixs",
    "fund_trader",
    "funded_trader",
    "liquidation_cases",
    "lp_cases",
    "markets_of",
    "open_cases",
    "oracle_key",
    "oracle_state",
    "position_cases",
    "price_ix",
    "reads",
    "short_ethsq",
    "swap_cases",
    "view_cases",
    "with_fixed_account",
    "with_remaining_accounts",
]


async def simulate_view(client: Any, case: Case) -> Any:
    """Simulates a view instruction and decodes its return value (``ViewError`` if it fails)."""
    blockhash = (await client.connection.get_latest_blockhash(Confirmed)).value.blockhash
    tx = Transaction([client.payer], Message([case.ix], client.payer.pubkey()), blockhash)
    sim = (await client.connection.simulate_transaction(tx, commitment=Confirmed)).value
    if sim.err is not None or sim.return_data is None:
        raise ViewError(sim.err, list(sim.logs or []))
    return client._decode_return(case.name, bytes(sim.return_data.data))
