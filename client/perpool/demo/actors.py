"""The demo's participants: liquidity providers and traders, each with a plan of actions on the
timeline, carried out through the library's high-level operations (:mod:`perpool.lp_actions`,
:mod:`perpool.trade_actions`) with their own keypair as signer and fee payer.

Traders come in kinds that cycle (:data:`TRADER_KINDS`; ``--quick`` keeps the first eight):
high-leverage longs that the drop liquidates with bad debt, longs and a short at the low
leveraged so that the drop or the rebound puts them inside the first step of the liquidation
ladder (part closed, the rest later), shorts that take profit by removing collateral,
payoff-market (ETH²) longs and shorts, a swapper, swing traders with partial closes and added
collateral, a dip buyer. Amounts are chosen in USD and converted at the step's price on the
path; the plan depends on the path only, so a seed gives the same plan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpool import lp_actions, trade_actions
from perpool.amounts import BPS, LP_DECIMALS, USD_DECIMALS, format_units, parse_bps_fraction
from perpool.client import PerpoolClient
from perpool.demo.pricepath import EXPO, PricePath
from perpool.errors import PerpoolError
from perpool.exchange import Exchange, Token
from perpool.faucet import faucet
from perpool.localnet import airdrop
from perpool.math import OraclePrice, usd_to_token_floor
from perpool.results import ActionResult
from perpool.spec import localnet_mint_authority
from perpool.trade import LONG, SHORT
from perpool.trade_actions import Sizing
from perpool.wallet import wallet_balance

USD = 10**USD_DECIMALS
SPOT = ("SOL", "ETH", "WBTC")
PAYOFF = "ETH2"
SLIPPAGE_BPS = 200
"""Price limits of the demo's trades: prices can move by a step between quote and landing."""
FUNDING_BUFFER_BPS = 500
ACTOR_LAMPORTS = 2_000_000_000
REBOUND_HIT_BPS = 400
"""How far above the low the rebound puts the short opened at the low into the ladder."""
LADDER_CUSHION_BPS = 3
"""Room left for the borrow fee and funding a ladder trade pays until the drop."""
CONCURRENCY = 4
"""Actions of different participants in flight at once."""


@dataclass(frozen=True)
class Action:
    step: int
    actor: str
    kind: str
    """deposit, withdraw, open, close, add_collateral, remove_collateral, swap."""
    symbol: str
    side: str | None = None
    amount: str | None = None
    """Tokens (deposit, open collateral, add_collateral, swap), USD (remove_collateral) or the
    fraction of the LP tokens held (withdraw), human units."""
    collateral: str | None = None
    leverage: str | None = None
    fraction: str | None = None
    to_symbol: str | None = None

    def label(self) -> str:
        parts = [self.kind.replace("_", " "), self.symbol]
        if self.side:
            parts.append(self.side)
        if self.leverage:
            parts.append(f"{self.leverage}x")
        if self.fraction:
            parts.append(f"fraction {self.fraction}")
        if self.amount:
            parts.append(self.amount)
        if self.to_symbol:
            parts.append(f"-> {self.to_symbol}")
        return " ".join(parts)


@dataclass
class Actor:
    name: str
    role: str
    """``lp`` or ``trader``."""
    kind: str
    keypair: Keypair = field(default_factory=Keypair)
    funding: dict[str, int] = field(default_factory=dict)
    """Tokens (base units) the faucet gives it before the timeline starts."""


@dataclass
class Plan:
    actors: dict[str, Actor]
    setup: list[Action]
    """Run before the keeper starts (the first liquidity)."""
    timeline: list[Action]


class _Builder:
    def __init__(self, path: PricePath, tokens: dict[str, Token]) -> None:
        self.path = path
        self.tokens_by_symbol = tokens
        self.decimals = {symbol: t.decimals for symbol, t in tokens.items()}
        self.actors: dict[str, Actor] = {}
        self.setup: list[Action] = []
        self.timeline: list[Action] = []

    def actor(self, name: str, role: str, kind: str) -> Actor:
        actor = self.actors[name] = Actor(name, role, kind)
        return actor

    def tokens(self, symbol: str, usd: int, step: int) -> int:
        """Base units of ``symbol`` worth ``usd`` dollars at the step's path price."""
        price = OraclePrice(self.path.price(symbol, max(step, 0)), EXPO)
        return usd_to_token_floor(usd * USD, self.decimals[symbol], price)

    def fund(self, actor: Actor, symbol: str, amount: int) -> None:
        actor.funding[symbol] = actor.funding.get(symbol, 0) + amount

    def text(self, symbol: str, amount: int) -> str:
        return format_units(amount, self.decimals[symbol])

    def add(self, action: Action, *, setup: bool = False) -> None:
        (self.setup if setup else self.timeline).append(action)

    def deposit(self, actor: Actor, step: int, symbol: str, amount: int, setup: bool) -> None:
        self.fund(actor, symbol, amount)
        self.add(
            Action(step, actor.name, "deposit", symbol, amount=self.text(symbol, amount)),
            setup=setup,
        )

    def open(
        self,
        actor: Actor,
        step: int,
        symbol: str,
        side: str,
        leverage: str,
        usd: int,
        collateral: str | None = None,
    ) -> None:
        paying = collateral or symbol
        amount = self.tokens(paying, usd, step)
        self.fund(actor, paying, amount)
        self.add(
            Action(
                step,
                actor.name,
                "open",
                symbol,
                side,
                amount=self.text(paying, amount),
                collateral=collateral,
                leverage=leverage,
            )
        )

    def ladder_leverage(self, symbol: str, side: str, opened: int, hit: int) -> str:
        """The leverage (size / collateral after the open fee) that leaves a position opened at
        step ``opened``, at step ``hit``'s price and after the close fee, with a margin in the
        middle of the first step of the custody's liquidation ladder: the keeper closes part
        of it there (with the shipped spec: half, between 0.5% and 1% of margin)."""
        config = self.tokens_by_symbol[symbol].account
        maintenance_bps = BPS * BPS // config.pricing.max_leverage
        ladder = config.liquidation.steps[: config.liquidation.num_steps]
        upper = ladder[0].margin_fraction_bps
        lower = ladder[1].margin_fraction_bps if len(ladder) > 1 else 0
        target_bps = maintenance_bps * (upper + lower) // (2 * BPS) + LADDER_CUSHION_BPS
        entry, then = self.path.price(symbol, opened), self.path.price(symbol, hit)
        adverse = entry - then if side == LONG else then - entry
        margin_bps = max(0, adverse) * BPS // entry + target_bps + config.fees.close_position_bps
        leverage_bps = min(config.pricing.max_initial_leverage, BPS * BPS // margin_bps)
        return format_units(leverage_bps, 4)

    def close(
        self, actor: Actor, step: int, symbol: str, side: str, fraction: str | None = None
    ) -> None:
        self.add(Action(step, actor.name, "close", symbol, side, fraction=fraction))

    def add_collateral(
        self, actor: Actor, step: int, symbol: str, side: str, usd: int, paying: str
    ) -> None:
        amount = self.tokens(paying, usd, step)
        self.fund(actor, paying, amount)
        self.add(
            Action(
                step, actor.name, "add_collateral", symbol, side, amount=self.text(paying, amount)
            )
        )

    def swap(self, actor: Actor, step: int, src: str, dst: str, usd: int) -> None:
        amount = self.tokens(src, usd, step)
        self.fund(actor, src, amount)
        self.add(
            Action(step, actor.name, "swap", src, amount=self.text(src, amount), to_symbol=dst)
        )


TraderKind = Callable[[_Builder, Actor, int, str], None]
"""Adds one trader's actions: (builder, actor, index, its asset)."""


def _phases(b: _Builder) -> tuple[int, int, int, int]:
    p = b.path
    return p.drop_start, p.drop_end, p.rebound_end, p.steps - 1


def _early(b: _Builder, k: int, offset: int = 0) -> int:
    """An opening step in the calm before the drop, spread over the traders."""
    start = b.path.drop_start
    return 1 + (k + offset) % max(1, start - 2)


def degen_long(b: _Builder, a: Actor, k: int, asset: str) -> None:
    *_, last = _phases(b)
    b.open(a, _early(b, k), asset, LONG, str(25 + 5 * (k // len(TRADER_KINDS) % 3)), 1_500)
    b.close(a, last, asset, LONG)


def ladder_long(b: _Builder, a: Actor, k: int, asset: str) -> None:
    """Leveraged so that the second step of the drop leaves it inside the first step of the
    liquidation ladder: the keeper closes half of it there."""
    start, *_, last = _phases(b)
    opened = _early(b, k, 1)
    b.open(a, opened, asset, LONG, b.ladder_leverage(asset, LONG, opened, start + 1), 3_000)
    b.close(a, last, asset, LONG)


def swing_long(b: _Builder, a: Actor, k: int, asset: str) -> None:
    start, _low, _rebound, last = _phases(b)
    b.open(a, _early(b, k), asset, LONG, "5", 4_000)
    b.close(a, start - 1, asset, LONG, "0.5")
    b.add_collateral(a, start + 1, asset, LONG, 1_500, asset)
    b.close(a, last - 1, asset, LONG)


def short(b: _Builder, a: Actor, k: int, asset: str) -> None:
    _start, low, rebound, _last = _phases(b)
    b.open(a, _early(b, k, 1), asset, SHORT, "8", 4_000, "USDC")
    b.add(Action(low + 1, a.name, "remove_collateral", asset, SHORT, amount="800"))
    b.close(a, rebound, asset, SHORT)


def payoff_long(b: _Builder, a: Actor, k: int, asset: str) -> None:
    *_, last = _phases(b)
    b.open(a, _early(b, k, 1), PAYOFF, LONG, "8", 2_500, "USDC")
    b.close(a, last, PAYOFF, LONG)


def bottom_short(b: _Builder, a: Actor, k: int, asset: str) -> None:
    """Shorts the low, leveraged so that the rebound puts it in the ladder once SOL is
    :data:`REBOUND_HIT_BPS` above the low."""
    _start, low, rebound, last = _phases(b)
    bottom = b.path.price("SOL", low)
    hit = next(
        (
            step
            for step in range(low + 1, rebound + 1)
            if (b.path.price("SOL", step) - bottom) * BPS >= REBOUND_HIT_BPS * bottom
        ),
        rebound,
    )
    b.open(a, low, "SOL", SHORT, b.ladder_leverage("SOL", SHORT, low, hit), 1_500, "USDC")
    b.close(a, last, "SOL", SHORT)


def payoff_short(b: _Builder, a: Actor, k: int, asset: str) -> None:
    _start, low, _rebound, last = _phases(b)
    b.open(a, _early(b, k, 2), PAYOFF, SHORT, "5", 2_500, "USDT")
    b.close(a, low, PAYOFF, SHORT, "0.5")
    b.close(a, last - 1, PAYOFF, SHORT)


def swapper(b: _Builder, a: Actor, k: int, asset: str) -> None:
    start, low, _rebound, last = _phases(b)
    b.open(a, _early(b, k), "WBTC", LONG, "3", 3_000)
    b.swap(a, start + 1, "SOL", "USDC", 3_000)
    b.swap(a, low + 2, "USDC", "ETH", 2_000)
    b.close(a, last, "WBTC", LONG)


def dip_buyer(b: _Builder, a: Actor, k: int, asset: str) -> None:
    _start, low, rebound, _last = _phases(b)
    b.open(a, low, asset, LONG, "10", 2_000)
    b.close(a, rebound + 1, asset, LONG)


def degen_short(b: _Builder, a: Actor, k: int, asset: str) -> None:
    _start, low, _rebound, _last = _phases(b)
    b.open(a, _early(b, k, 1), asset, SHORT, "30", 1_200, "USDC")
    b.close(a, low + 1, asset, SHORT)


def late_long(b: _Builder, a: Actor, k: int, asset: str) -> None:
    _start, _low, rebound, last = _phases(b)
    b.open(a, min(rebound + 1, last - 1), asset, LONG, "35", 1_500)
    b.close(a, last, asset, LONG)


def mid_long(b: _Builder, a: Actor, k: int, asset: str) -> None:
    start, *_, last = _phases(b)
    b.open(a, _early(b, k, 2), asset, LONG, "12", 2_500)
    b.add_collateral(a, start, asset, LONG, 2_000, asset)
    b.close(a, last, asset, LONG)


def payoff_degen(b: _Builder, a: Actor, k: int, asset: str) -> None:
    *_, last = _phases(b)
    b.open(a, _early(b, k, 3), PAYOFF, LONG, "15", 1_000, "USDT")
    b.close(a, last, PAYOFF, LONG)


TRADER_KINDS: tuple[tuple[str, TraderKind], ...] = (
    ("degen-long", degen_long),
    ("ladder-long", ladder_long),
    ("short", short),
    ("payoff-long", payoff_long),
    ("bottom-short", bottom_short),
    ("payoff-short", payoff_short),
    ("swapper", swapper),
    ("swing-long", swing_long),
    ("dip-buyer", dip_buyer),
    ("degen-short", degen_short),
    ("late-long", late_long),
    ("mid-long", mid_long),
    ("payoff-degen", payoff_degen),
)

# Liquidity: (name, symbol, USD at the start); the first deposits come before the timeline.
LIQUIDITY = (
    ("lp-sol", "SOL", 150_000),
    ("lp-eth", "ETH", 150_000),
    ("lp-wbtc", "WBTC", 120_000),
    ("lp-usdc", "USDC", 200_000),
    ("lp-usdt", "USDT", 100_000),
)


def build_plan(path: PricePath, traders: int, tokens: dict[str, Token]) -> Plan:
    """Liquidity providers and ``traders`` traders with their actions over ``path``, for the
    pool's ``tokens`` by symbol (decimals and the custodies' configs)."""
    if traders < 1:
        raise ValueError("at least one trader")
    b = _Builder(path, tokens)
    decimals = b.decimals
    _start, low, _rebound, last = _phases(b)
    for name, symbol, usd in LIQUIDITY:
        actor = b.actor(name, "lp", f"{symbol} liquidity")
        b.deposit(actor, 0, symbol, b.tokens(symbol, usd, 0), setup=True)
    # After the drop, one provider adds stables; before the end, another takes some ETH out.
    b.deposit(b.actors["lp-usdc"], low + 1, "USDC", 50_000 * 10 ** decimals["USDC"], setup=False)
    b.add(Action(last - 2, "lp-eth", "withdraw", "ETH", amount="0.3"))
    for k in range(traders):
        kind, add_actions = TRADER_KINDS[k % len(TRADER_KINDS)]
        asset = SPOT[(k + k // len(TRADER_KINDS)) % len(SPOT)]
        actor = b.actor(f"trader-{k + 1:02d}", "trader", kind)
        add_actions(b, actor, k, asset)
    for actor in b.actors.values():
        for symbol in actor.funding:
            actor.funding[symbol] += actor.funding[symbol] * FUNDING_BUFFER_BPS // BPS
    b.timeline.sort(key=lambda a: a.step)
    assert all(0 < a.step < path.steps for a in b.timeline), "an action outside the path"
    return Plan(b.actors, b.setup, b.timeline)


# --------------------------------------------------------------------------------------------
# Carrying actions out
# --------------------------------------------------------------------------------------------


def actor_exchange(ex: Exchange, actor: Actor) -> Exchange:
    """The pool as seen by ``actor``: its keypair signs and pays the fees."""
    return Exchange(PerpoolClient(ex.client.program, actor.keypair), ex.spec, ex.pool, ex.tokens)


async def fund_actors(ex: Exchange, url: str, actors: list[Actor]) -> int:
    """Mints every actor's tokens from the localnet faucet (with SOL for fees); returns the
    number of faucet transactions."""
    gate = asyncio.Semaphore(CONCURRENCY)
    decimals = {t.symbol: t.decimals for t in ex.tokens}
    conn = ex.client.connection
    # SOL for fees first, one airdrop per address (the faucet would top each one up, but
    # identical airdrops sent at once would be one transaction).
    wallets = [localnet_mint_authority().pubkey(), *(a.keypair.pubkey() for a in actors)]

    async def sol(wallet: Pubkey) -> None:
        async with gate:
            await airdrop(conn, wallet, ACTOR_LAMPORTS)

    await asyncio.gather(*(sol(w) for w in wallets))

    async def one(actor: Actor, symbol: str, amount: int) -> None:
        async with gate:
            await faucet(
                ex, url, symbol, format_units(amount, decimals[symbol]), actor.keypair.pubkey()
            )

    jobs = [one(a, s, n) for a in actors for s, n in a.funding.items()]
    await asyncio.gather(*jobs)
    return len(jobs)


async def perform(ex: Exchange, actor: Actor, action: Action) -> dict[str, Any]:
    """Carries out one action; the record says what happened (``ok``, ``skipped`` when the
    position is gone, e.g. liquidated, or ``failed`` with the error)."""
    mine = actor_exchange(ex, actor)
    owner = actor.keypair
    record: dict[str, Any] = {
        "step": action.step,
        "actor": actor.name,
        "kind": actor.kind,
        "action": action.kind,
        "label": action.label(),
    }
    try:
        result = await _run(mine, owner, action)
    except PerpoolError as exc:
        status = "skipped" if exc.code == "no_position" else "failed"
        name = getattr(exc, "program_error", None)
        record |= {
            "status": status,
            "error": exc.code if not name else name.get("name", exc.code),
            "message": exc.message,
        }
        return record
    record["status"] = "ok"
    if result.outcome is not None:
        record["signature"] = result.outcome.signature
    record["result"] = {
        k: v
        for k, v in result.fields.items()
        if k
        in (
            "sizeUsd",
            "leverage",
            "entryPriceUsd",
            "exitPriceUsd",
            "payout",
            "payoutToken",
            "lpAmount",
            "amountOut",
            "fee",
            "feeUsd",
            "positionCollateralUsd",
        )
    }
    return record


async def _run(ex: Exchange, owner: Keypair, action: Action) -> ActionResult:
    assert action.amount is not None or action.kind == "close"
    if action.kind == "deposit":
        assert action.amount is not None
        return await lp_actions.deposit(ex, owner, action.symbol, action.amount)
    if action.kind == "withdraw":
        held = await wallet_balance(ex.client, owner.pubkey(), ex.lp_mint)
        lp_amount = held * parse_bps_fraction(action.amount or "0") // BPS
        return await lp_actions.withdraw(
            ex, owner, action.symbol, format_units(lp_amount, LP_DECIMALS)
        )
    if action.kind == "open":
        assert action.side is not None
        assert action.amount is not None
        return await trade_actions.open_position(
            ex,
            owner,
            action.symbol,
            action.side,
            collateral_text=action.amount,
            collateral_symbol=action.collateral,
            sizing=Sizing(leverage=action.leverage),
            slippage_bps=SLIPPAGE_BPS,
        )
    if action.kind == "close":
        assert action.side is not None
        return await trade_actions.close_position(
            ex,
            owner,
            action.symbol,
            action.side,
            fraction=action.fraction or "1",
            slippage_bps=SLIPPAGE_BPS,
        )
    if action.kind == "add_collateral":
        assert action.side is not None
        assert action.amount is not None
        return await trade_actions.add_collateral(
            ex, owner, action.symbol, action.side, action.amount
        )
    if action.kind == "remove_collateral":
        assert action.side is not None
        assert action.amount is not None
        return await trade_actions.remove_collateral(
            ex, owner, action.symbol, action.side, action.amount
        )
    if action.kind == "swap":
        assert action.to_symbol is not None
        assert action.amount is not None
        return await trade_actions.swap(
            ex, owner, action.symbol, action.to_symbol, action.amount, slippage_bps=SLIPPAGE_BPS
        )
    raise ValueError(f"unknown action {action.kind!r}")


async def perform_all(
    ex: Exchange, actors: dict[str, Actor], actions: list[Action], concurrency: int = CONCURRENCY
) -> list[dict[str, Any]]:
    """Carries out ``actions``: one participant's in order, up to ``concurrency`` participants
    at once (1: all of them in order)."""
    gate = asyncio.Semaphore(concurrency)
    by_actor: dict[str, list[Action]] = {}
    for action in actions:
        by_actor.setdefault(action.actor, []).append(action)

    async def one(name: str, mine: list[Action]) -> list[dict[str, Any]]:
        out = []
        for action in mine:
            async with gate:
                out.append(await perform(ex, actors[name], action))
        return out

    results = await asyncio.gather(*(one(n, m) for n, m in by_actor.items()))
    return [r for group in results for r in group]
