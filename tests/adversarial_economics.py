"""Economic checks of the adversarial suite (classes 14 and 16-20): fresh pools with chosen
configs next to the world, exact rational models of DESIGN §4's formulas, and batched reads of
balances, custodies and the LP price.

The models use :class:`fractions.Fraction` and never round: the program's results (rounded in
the pool's favour) are compared against them, so "the trader never receives more than the exact
value" is a plain ``<=``. USD amounts are in USD units (6 decimals), token amounts in base units.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from adversary import World
from invariants import token_balances
from pool_env import PoolEnv, TokenSpec
from prometheus_client import generate_latest
from solana.rpc.commitment import Confirmed
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams as SystemTransfer
from solders.system_program import transfer as system_transfer
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    MintToParams,
    TransferParams,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    mint_to,
)
from spl.token.instructions import transfer as token_transfer
from trade_support import BPS, Trader, collateral_symbol, events

from perpool import lp, pda, trade, views
from perpool import quotes as q
from perpool.math import Side
from perpool.trade import LONG, Market
from perpool_keeper.config import KeeperConfig, load_config
from perpool_keeper.daemon import Keeper

_POOL_NUMBERS = itertools.count()

# ------------------------------------------------------------------------------------------
# Fresh pools
# ------------------------------------------------------------------------------------------


async def fresh_pool(
    world: World,
    hint: str,
    tokens: Sequence[TokenSpec],
    configs: Mapping[str, Mapping[str, Any]],
    *,
    freeze: bool = False,
) -> PoolEnv:
    """A new pool on the world's chain (its own mints, the admin as mint and, with ``freeze``,
    freeze authority), each custody added with ``configs[symbol]`` and priced at its spec."""
    env, client, admin = world.env, world.client, world.env.admin
    name = f"{hint[:24]}-{next(_POOL_NUMBERS)}"
    pool = dataclasses.replace(
        env, specs={t.symbol: t for t in tokens}, mints={}, last_publish={}, pool=name
    )
    await client.add_pool(name, admin, env.approvers)
    for spec in tokens:
        pool.mints[spec.symbol] = await AsyncToken.create_mint(
            client.connection,
            admin,
            admin.pubkey(),
            spec.decimals,
            TOKEN_PROGRAM_ID,
            freeze_authority=admin.pubkey() if freeze else None,
        )
        config = pool.config(spec.symbol, **dict(configs.get(spec.symbol, {})))
        await client.add_custody(
            name, pool.mint(spec.symbol), spec.stable, config, admin, env.approvers
        )
        await pool.set_price(spec.symbol, spec.price)
    return pool


LAMPORTS = 1_000_000_000


async def funded_traders(pool: PoolEnv, count: int, **amounts: int) -> list[Trader]:
    """``count`` new wallets with 10 SOL of lamports and an associated token account per pool
    token, funded with ``amounts[symbol]``: one transaction per wallet (the admin pays and
    mints)."""
    admin = pool.admin
    wallets = [Keypair() for _ in range(count)]
    await pool.client.send(
        [
            system_transfer(
                SystemTransfer(
                    from_pubkey=admin.pubkey(), to_pubkey=w.pubkey(), lamports=10 * LAMPORTS
                )
            )
            for w in wallets
        ]
    )
    traders = []
    for wallet in wallets:
        owner = wallet.pubkey()
        ixs: list[Instruction] = []
        accounts = {}
        for symbol in pool.specs:
            mint = pool.mint(symbol)
            accounts[symbol] = get_associated_token_address(owner, mint)
            ixs.append(create_idempotent_associated_token_account(admin.pubkey(), owner, mint))
            if amounts.get(symbol):
                ixs.append(
                    mint_to(
                        MintToParams(
                            program_id=TOKEN_PROGRAM_ID,
                            mint=mint,
                            dest=accounts[symbol],
                            mint_authority=admin.pubkey(),
                            amount=amounts[symbol],
                        )
                    )
                )
        await pool.client.send(ixs)
        traders.append(Trader(wallet, accounts))
    return traders


async def new_trader(pool: PoolEnv, **amounts: int) -> Trader:
    (trader,) = await funded_traders(pool, 1, **amounts)
    return trader


def transfer_ix(source: Pubkey, dest: Pubkey, owner: Pubkey, amount: int) -> Instruction:
    """A plain SPL token transfer (a donation when ``dest`` is a custody vault)."""
    return token_transfer(
        TransferParams(
            program_id=TOKEN_PROGRAM_ID, source=source, dest=dest, owner=owner, amount=amount
        )
    )


def vault(pool: PoolEnv, symbol: str) -> Pubkey:
    return pool.client.custody_keys(pool.pool, pool.mint(symbol)).token_account


@dataclass
class Provider:
    trader: Trader
    lp_account: Pubkey


async def seed_liquidity(pool: PoolEnv, **amounts: int) -> Provider:
    """One LP wallet depositing ``amounts[symbol]`` of each token, in one transaction."""
    trader = await new_trader(pool, **amounts)
    lp_account = await pool.lp_account(trader.key)
    ixs = [
        await lp.add_liquidity_ix(
            pool.client,
            trader.key,
            pool.pool,
            pool.mint(symbol),
            amount,
            funding_account=trader.accounts[symbol],
            lp_token_account=lp_account,
        )
        for symbol, amount in amounts.items()
    ]
    await pool.client.send(ixs, [trader.wallet])
    return Provider(trader, lp_account)


async def send(pool: PoolEnv, ixs: Sequence[Instruction], *signers: Keypair) -> Signature:
    return await pool.client.send(ixs, signers)


async def event_data(pool: PoolEnv, signature: Signature, name: str) -> list[Any]:
    return [e.data for e in await events(pool, signature) if e.name == name]


async def funded_wallet(pool: PoolEnv, wallet: Keypair) -> None:
    """10 SOL of lamports for ``wallet`` (a keeper's payer)."""
    transfer = SystemTransfer(
        from_pubkey=pool.admin.pubkey(), to_pubkey=wallet.pubkey(), lamports=10 * LAMPORTS
    )
    await pool.client.send([system_transfer(transfer)])


# ------------------------------------------------------------------------------------------
# The keeper's liquidation job on a pool
# ------------------------------------------------------------------------------------------


def keeper_config(pool: PoolEnv, tmp_path: Path, payer: Keypair) -> KeeperConfig:
    """``perpool_keeper``'s configuration for ``pool`` alone, liquidations only."""
    keypair = tmp_path / "keeper.json"
    keypair.write_text(json.dumps(list(bytes(payer))))
    config = load_config(
        None,
        {
            "PERPOOL_KEEPER__RPC__URLS": pool.url,
            "PERPOOL_KEEPER__RPC__BACKOFF_BASE_SEC": "0.05",
            "PERPOOL_KEEPER__RPC__MAX_ATTEMPTS": "2",
            "PERPOOL_KEEPER__KEEPER__KEYPAIR": str(keypair),
            "PERPOOL_KEEPER__HTTP__ENABLED": "false",
        },
    )
    config.keeper.pools = [pool.pool]
    for name in ("accrual", "aum", "oracle"):
        getattr(config.jobs, name).enabled = False
    return config


Race = Callable[[str], Awaitable[None]]


async def keeper_tick(
    pool: PoolEnv, tmp_path: Path, payer: Keypair, race: Race | None = None
) -> list[dict[str, Any]]:
    """One tick of the keeper's liquidation job; its results. ``race(target)`` runs just
    before the keeper sends its transaction for ``target`` (after it evaluated the position):
    whatever it does is what the keeper's transaction meets on chain."""
    results, _ = await keeper_tick_with_metrics(pool, tmp_path, payer, race)
    return results


async def keeper_tick_with_metrics(
    pool: PoolEnv, tmp_path: Path, payer: Keypair, race: Race | None = None
) -> tuple[list[dict[str, Any]], str]:
    """``keeper_tick``, and the keeper's Prometheus metrics after it."""
    keeper = Keeper(keeper_config(pool, tmp_path, payer), payer)
    try:
        if race is not None:
            submit = keeper.sender.submit

            async def racing(
                kind: str, target: str, build: Any, signers: Sequence[Keypair] = ()
            ) -> Any:
                await race(target)
                return await submit(kind, target, build, signers)

            keeper.sender.submit = racing  # type: ignore[method-assign]
        summary = await keeper.run_job("liquidation")
        metrics = generate_latest(keeper.metrics.registry).decode()
    finally:
        await keeper.close()
    assert "error" not in summary, summary
    results: list[dict[str, Any]] = summary["results"]
    return results, metrics


# ------------------------------------------------------------------------------------------
# Reads
# ------------------------------------------------------------------------------------------


async def token_amounts(pool: PoolEnv, keys: Iterable[Pubkey]) -> list[int]:
    """SPL token balances (0 for a missing account), in one RPC call."""
    return await token_balances(pool, list(keys))


async def lp_supply(pool: PoolEnv) -> int:
    mint = pda.lp_token_mint(pda.pool(pool.pool))
    info = (await pool.client.connection.get_account_info(mint, Confirmed)).value
    assert info is not None
    return int.from_bytes(bytes(info.data)[36:44], "little")


async def aum_view(pool: PoolEnv) -> q.AumView:
    return q.AumView.from_decoded(await views.assets_under_management(pool.client, pool.pool))


async def custody(pool: PoolEnv, symbol: str) -> Any:
    return await pool.custody(symbol)


async def custody_states(pool: PoolEnv) -> dict[str, q.CustodyState]:
    out = {}
    for symbol in pool.specs:
        key = pool.client.custody_keys(pool.pool, pool.mint(symbol)).custody
        out[symbol] = q.CustodyState.from_account(await pool.custody(symbol), key=key)
    return out


async def oracle_prices(pool: PoolEnv, symbol: str) -> q.Prices:
    """The custody's raw oracle prices (payoff markets: the underlying's)."""
    oracle = await pool.client.fetch(
        "CustomOracle", pool.client.custody_keys(pool.pool, pool.mint(symbol)).oracle
    )
    return q.Prices.from_custom_oracle(oracle)


async def priced_custodies(pool: PoolEnv) -> list[q.PricedCustody]:
    """Every custody of the pool in pool order with its prices, as the LP quotes take them."""
    states = await custody_states(pool)
    by_key = {s.key: (sym, s) for sym, s in states.items()}
    pool_account = await pool.client.fetch("Pool", pda.pool(pool.pool))
    out = []
    for key in pool_account.custodies:
        symbol, state = by_key[key]
        out.append(
            q.PricedCustody(state, q.custody_prices(state, await oracle_prices(pool, symbol)))
        )
    return out


async def position_state(pool: PoolEnv, market: Market, owner: Pubkey) -> Any:
    return await pool.client.fetch("Position", trade.position_key(pool.client, market, owner))


def side_of(market: Market) -> Side:
    return Side.LONG if market.side == LONG else Side.SHORT


def symbol_of_mint(pool: PoolEnv, mint: Pubkey) -> str:
    return next(s for s in pool.specs if pool.mint(s) == mint)


async def mirror_open(pool: PoolEnv, market: Market, collateral: int, size_usd: int) -> q.OpenQuote:
    """``perpool.quotes``' open quote from the accounts as they are (no time has to pass)."""
    states = await custody_states(pool)
    traded, held = symbol_of_mint(pool, market.mint), symbol_of_mint(pool, market.collateral_mint)
    aum = (await pool.client.fetch("Pool", pda.pool(pool.pool))).aum_usd
    return q.quote_open(
        side_of(market),
        states[traded],
        q.custody_prices(states[traded], await oracle_prices(pool, traded)),
        states[held],
        q.custody_prices(states[held], await oracle_prices(pool, held)),
        collateral,
        size_usd,
        aum,
    )


async def mirror_swap(pool: PoolEnv, src: str, dst: str, amount: int) -> q.SwapQuote:
    states = await custody_states(pool)
    return q.quote_swap(
        states[src],
        await oracle_prices(pool, src),
        states[dst],
        await oracle_prices(pool, dst),
        amount,
    )


async def mirror_add(pool: PoolEnv, symbol: str, amount: int) -> q.AddLiquidityQuote:
    key = pool.client.custody_keys(pool.pool, pool.mint(symbol)).custody
    return q.quote_add_liquidity(await priced_custodies(pool), key, await lp_supply(pool), amount)


async def mirror_remove(pool: PoolEnv, symbol: str, lp_amount: int) -> q.RemoveLiquidityQuote:
    key = pool.client.custody_keys(pool.pool, pool.mint(symbol)).custody
    return q.quote_remove_liquidity(
        await priced_custodies(pool), key, await lp_supply(pool), lp_amount
    )


# ------------------------------------------------------------------------------------------
# Exact models (DESIGN §4, no rounding)
# ------------------------------------------------------------------------------------------


def price_of(spec: TokenSpec, price: int | None = None) -> Fraction:
    """USD per whole token."""
    return Fraction(spec.price if price is None else price) * Fraction(10) ** spec.expo


def usd_exact(amount: int | Fraction, decimals: int, price: Fraction) -> Fraction:
    """USD units worth ``amount`` base units at ``price`` USD per whole token."""
    return Fraction(amount) * price * Fraction(10) ** (6 - decimals)


def tokens_exact(usd: int | Fraction, decimals: int, price: Fraction) -> Fraction:
    """Base units worth ``usd`` USD units."""
    return Fraction(usd) / (price * Fraction(10) ** (6 - decimals))


def fee_exact(size_usd: int, bps: int, min_fee_usd: int = 0) -> Fraction:
    """DESIGN §4 trading fee, unrounded: max(minFee, tradingFee x size)."""
    return max(Fraction(min_fee_usd), Fraction(size_usd * bps, BPS))


def pool_value_exact(
    states: Mapping[str, q.CustodyState], specs: Mapping[str, TokenSpec], prices: Mapping[str, int]
) -> Fraction:
    """Σ owned x price over the token custodies (a pool without open positions)."""
    total = Fraction(0)
    for symbol, state in states.items():
        if state.is_synthetic:
            continue
        total += usd_exact(
            state.assets.owned, state.decimals, price_of(specs[symbol], prices[symbol])
        )
    return total


def symbol_for(pool: PoolEnv, market: Market) -> str:
    return collateral_symbol(pool, market)


def is_long(market: Market) -> bool:
    return market.side == LONG


__all__ = [
    "LAMPORTS",
    "Provider",
    "Race",
    "aum_view",
    "custody",
    "custody_states",
    "event_data",
    "fee_exact",
    "fresh_pool",
    "funded_traders",
    "funded_wallet",
    "is_long",
    "keeper_config",
    "keeper_tick",
    "keeper_tick_with_metrics",
    "lp_supply",
    "mirror_add",
    "mirror_open",
    "mirror_remove",
    "mirror_swap",
    "new_trader",
    "oracle_prices",
    "pool_value_exact",
    "position_state",
    "price_of",
    "priced_custodies",
    "seed_liquidity",
    "send",
    "side_of",
    "symbol_for",
    "symbol_of_mint",
    "token_amounts",
    "tokens_exact",
    "transfer_ix",
    "usd_exact",
    "vault",
]
