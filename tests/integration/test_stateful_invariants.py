"""Random sequences of every user action, oracle move, clock jump, crank and liquidation against
one real localnet (signed transactions, real SPL tokens), with SECURITY.md's invariants checked
after every step.

Each Hypothesis example gets a fresh pool (SOL, ETH, USDC, USDT with the risk engine on: the
liquidation ladder, insurance fund, funding, borrow curve, price impact, LP fee curve and
minimum fee) on the same chain, three LPs, three traders and a keeper wallet. Rules pick random
actors and amounts, edge amounts included (a few base units, a whole balance, leverage at and
just over the cap, a withdrawal that drains every unlocked token). An action the program
rejects must fail with one of the error names its rule expects and change nothing
(``invariants.attempt``); any other failure is a violation.

After every step (``invariants_hold``): per-custody token conservation and the book totals
(``trade_support.assert_conserved``), global conservation per mint (supply == what the test
minted == the sum over every token account), and solvency. Solvency, from the program's own
accounting: a position can never be paid more than its ``collateral_amount + locked_amount``
tokens of its collateral custody (the cap in ``Position::quote_close``), so the pool is solvent
when, per custody, the sum of that cap over the open positions (read from the position
accounts) is at most ``owned + collateral`` and the vault holds it plus the protocol fees and
the insurance fund (``invariants.check_solvency``).
Within rules: no gain at a constant price (open+close, swap A->B->A, deposit->withdraw round
trips, and single swaps and LP actions; valued exactly at the oracle price), an open+close pays
at least the open and close fees, the LP price (AUM / LP supply, the program's view) never
falls on a deposit, withdrawal, swap, open, collateral top-up or crank, the keeper's
evaluation and the program agree on which positions are liquidatable, and solvency right after
each liquidation. Hypothesis's first example is its simplest: the argument-free rule
(``liquidate``) repeated.

Size: ``PERPOOL_INVARIANT_STEPS=<total steps>`` scales examples and steps per example (default:
a CI-sized run, ``DEFAULT_EXAMPLES`` x ``DEFAULT_STEPS``); ``PERPOOL_INVARIANT_SEED`` picks the
Hypothesis seed (printed with the summary); ``PERPOOL_INVARIANT_REPORT=<path>`` writes a JSON
report (examples, steps, steps per rule, rejections by error name, violations, seed, duration).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import pytest
from conftest import start_validator
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from invariants import (
    Outcome,
    RunStats,
    Violation,
    attempt,
    check_lp_price_kept,
    check_solvency,
    check_token_supplies,
    lp_view,
    pick_amount,
    pool_positions,
    run_size,
    token_balances,
    value_usd,
)
from pool_env import PoolEnv, TokenSpec, build_pool_env
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    MintToParams,
    create_associated_token_account,
    get_associated_token_address,
    mint_to,
)
from trade_support import (
    BPS,
    RATE_ONE,
    U64_MAX,
    USD,
    Trader,
    add_pool,
    assert_conserved,
    events,
    set_prices,
    usd_of,
)

from perpool import lp, pda, trade, views
from perpool import quotes as q
from perpool.client import ViewError
from perpool.localnet import LocalnetProcess
from perpool.math import pricing_supply, redeeming_supply
from perpool.trade import LONG, SHORT, Market
from perpool_keeper.chain import PositionRecord, clock, load_pool, load_positions
from perpool_keeper.config import load_config
from perpool_keeper.evaluate import evaluate
from perpool_keeper.metrics import Metrics
from perpool_keeper.rpc import RpcPool

DEFAULT_EXAMPLES = 6
DEFAULT_STEPS = 30
DEFAULT_SEED = 20_240_617
MAX_EXAMPLES = 28
"""The program allows 32 pools per chain: one per example, and one spare for Hypothesis's
replay of a failing example."""
MAX_POOLS = 32
PROGRESS_STEPS = 50

EXPO = -8
TOKENS = (
    TokenSpec("SOL", 9, False, 100 * 10**8, EXPO),
    TokenSpec("ETH", 8, False, 2_000 * 10**8, EXPO),
    TokenSpec("USDC", 6, True, 1_000_000, -6),
    TokenSpec("USDT", 6, True, 1_000_000, -6),
)
SPECS = {t.symbol: t for t in TOKENS}
SYMBOLS = tuple(SPECS)
MAX_PRICE_AGE = 300


def _custody_config(symbol: str) -> dict[str, Any]:
    stable = SPECS[symbol].stable
    config: dict[str, Any] = {
        "max_price_age_sec": MAX_PRICE_AGE,
        "max_initial_leverage": 50 * BPS,
        "max_leverage": 100 * BPS,
        "max_utilization_bps": 9_000,
        "min_trade_size_usd": 10 * USD,
        "min_liquidity_deposit_usd": USD,
        "open_position_bps": 10,
        "close_position_bps": 10,
        "min_fee_usd": USD // 2,
        "swap_bps": 20,
        "liquidity_min_fee_bps": 10,
        "liquidity_max_fee_bps": 100,
        "liquidity_fee_k_bps": 2_000,
        "liquidation_reward_bps": 50,
        "protocol_share_bps": 2_000,
        "base_rate": 10_000,
        "hourly_rate": 1_000_000,
        "slope2": 10_000_000,
        "optimal_utilization": 800_000_000,
        "target_bps": {"SOL": 3_000, "ETH": 2_000, "USDC": 3_000, "USDT": 2_000}[symbol],
        "min_bps": 500 if symbol == "SOL" else 0,
        "max_bps": 6_000 if symbol == "SOL" else BPS,
        # Close half below the maintenance margin, the rest below half of it.
        "liquidation_steps": ((BPS, 5_000), (5_000, BPS)),
        "auto_close_fee_usd": USD,
        "insurance_fund_fraction_bps": 5_000,
        "insurance_fund_cap_usd": 500 * USD,
    }
    if not stable:
        config |= {
            "funding_c": 10,
            "max_funding_rate": RATE_ONE // 100,
            "long_a_bps": 5,
            "long_b_bps": 50,
            "short_a_bps": 5,
            "short_b_bps": 50,
            "max_position_size_usd": 200_000 * USD,
            "max_long_open_interest_usd": 400_000 * USD,
            "max_short_open_interest_usd": 400_000 * USD,
        }
    return config


CONFIGS = {symbol: _custody_config(symbol) for symbol in SYMBOLS}

WHOLE = {"SOL": 10**9, "ETH": 10**8, "USDC": 10**6, "USDT": 10**6}
LP_FUNDS = {"SOL": 2_000, "ETH": 100, "USDC": 400_000, "USDT": 400_000}
TRADER_FUNDS = {"SOL": 200, "ETH": 10, "USDC": 40_000, "USDT": 40_000}
SEED_LIQUIDITY = ((0, "SOL", 500), (1, "ETH", 25), (2, "USDC", 50_000), (0, "USDT", 30_000))
"""(LP, token, whole tokens) deposited when an example starts: about $180k."""
SEED_POSITIONS = ((0, 0, 10, 5), (1, 4, 2_000, 10), (2, 1, 1, 20), (0, 3, 500, 40))
"""(trader, market, whole collateral tokens, leverage) opened when an example starts, so the
position rules have targets even in examples whose open rules are switched off."""
ACTOR_LAMPORTS = 200_000_000
"""Rent for position accounts (the owner pays it; fees are paid by the admin)."""


@dataclass(frozen=True)
class MarketSpec:
    symbol: str
    side: str
    collateral: str


MARKETS = (
    MarketSpec("SOL", LONG, "SOL"),
    MarketSpec("ETH", LONG, "ETH"),
    MarketSpec("SOL", SHORT, "USDC"),
    MarketSpec("SOL", SHORT, "USDT"),
    MarketSpec("ETH", SHORT, "USDC"),
    MarketSpec("ETH", SHORT, "USDT"),
)

# Program errors each action may legitimately end with (anything else is a violation).
STALE = {"StaleOraclePrice"}
OPEN_ERRORS = STALE | {
    "ZeroAmount",
    "TradeTooSmall",
    "InsufficientCollateral",
    "LeverageTooLow",
    "LeverageTooHigh",
    "PositionTooLarge",
    "MaxUtilizationExceeded",
    "OpenInterestCapExceeded",
}
CLOSE_ERRORS = STALE
# CloseTooSmall: a slice that cannot pay its own fees.
PARTIAL_CLOSE_ERRORS = STALE | {"InvalidCloseSize", "TradeTooSmall", "CloseTooSmall"}
ADD_COLLATERAL_ERRORS = STALE | {"ZeroAmount", "LeverageTooLow"}
REMOVE_COLLATERAL_ERRORS = STALE | {"ZeroAmount", "InsufficientCollateral", "LeverageTooHigh"}
SWAP_ERRORS = STALE | {"ZeroAmount", "InsufficientLiquidity"}
DEPOSIT_ERRORS = STALE | {"ZeroAmount", "DepositTooSmall", "TokenRatioOutOfBounds", "EmptyPool"}
WITHDRAW_ERRORS = STALE | {
    "ZeroAmount",
    "InsufficientLiquidity",
    "TokenRatioOutOfBounds",
    "EmptyPool",
}
CRANK_ERRORS = STALE

# Amounts: a fraction of the balance (bps), a few base units, or all of it. A typical fraction
# is drawn as often as the edges together.
TYPICAL = st.tuples(st.just("bps"), st.integers(10, 2_000))
AMOUNT = st.one_of(
    TYPICAL,
    TYPICAL,
    st.tuples(st.just("bps"), st.integers(1, BPS)),
    st.tuples(st.just("units"), st.integers(1, 1_000)),
    st.just(("all", BPS)),
)
LP_AMOUNT = st.one_of(AMOUNT, st.just(("drain", 0)))
"""``drain``: the largest LP amount whose withdrawal the pool can still pay from unlocked
tokens."""
LEVERAGE = st.one_of(
    st.sampled_from([11_000, 20_000, 30_000, 50_000, 100_000, 200_000]),
    st.sampled_from([10_000, 250_000, 490_000]),
    st.sampled_from([5_000, 500_000, 500_100, 10**6]),
)
"""Leverage in bps of the gross collateral: typical, at the edges, and beyond them (below 1x,
at the 50x cap counting the fee, just and far over it)."""
PRICE_MOVES = st.sampled_from(
    [-8_000, -5_000, -2_000, -500, -100, -10, 10, 100, 500, 2_000, 5_000, 10_000]
)
"""Relative moves in bps; -80% is the sharp drop. Stablecoins move a twentieth of it."""
SHARP_MOVES = st.sampled_from([-8_000, -6_000, -4_000, -3_000, 3_000, 10_000])
"""Moves that take leveraged positions through every liquidation step and into bad debt."""
BEYOND_BPS = st.sampled_from([0, 2, 10, 25, 40, 60, 100])
"""How far past a position's liquidation price a targeted move goes (bps of the price)."""
CLOSE_BPS = st.sampled_from([1, 10, 2_500, 5_000, 9_000, 9_999])
REMOVE_BPS = st.sampled_from([1, 100, 1_000, 5_000, 9_000, 9_999, BPS])
CLOCK_STEPS = st.sampled_from([1, 5, 60, MAX_PRICE_AGE - 1, MAX_PRICE_AGE + 1, 900, 3_600, 21_600])
ACTOR = st.integers(0, 2)
ANY_ACTOR = st.integers(0, 5)
TOKEN = st.sampled_from(SYMBOLS)


def is_replay() -> bool:
    """Whether Hypothesis is replaying a failing example to report it."""
    try:
        return bool(current_build_context().is_final)
    except InvalidArgument:
        return False


# --------------------------------------------------------------------------------------------
# One chain for the run; a pool and wallets per example
# --------------------------------------------------------------------------------------------


@dataclass
class Example:
    env: PoolEnv
    lps: list[Trader]
    traders: list[Trader]
    keeper: Trader
    minted: dict[str, int]


@dataclass
class Run:
    loop: asyncio.AbstractEventLoop
    base: PoolEnv
    keeper_rpc: RpcPool
    stats: RunStats
    report: Path | None = None
    """Where the JSON report goes; rewritten every ``PROGRESS_STEPS`` steps during the run."""
    pools: int = 1
    base_used: bool = False

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    async def new_example(self) -> Example:
        if not self.base_used:
            self.base_used = True
            env = self.base
        else:
            if self.pools >= MAX_POOLS:
                raise RuntimeError(f"no pool left on this chain (the program allows {MAX_POOLS})")
            self.pools += 1
            env = await add_pool(self.base, f"inv{self.pools}", TOKENS, CONFIGS)
        minted = dict.fromkeys(SYMBOLS, 0)
        funds = [LP_FUNDS] * 3 + [TRADER_FUNDS] * 3 + [{}]
        actors = await asyncio.gather(*(new_actor(env, f, minted) for f in funds))
        example = Example(env, actors[:3], actors[3:6], actors[6], minted)
        for index, symbol, whole in SEED_LIQUIDITY:
            provider = example.lps[index]
            await lp.add_liquidity(
                env.client,
                provider.wallet,
                env.pool,
                env.mint(symbol),
                whole * WHOLE[symbol],
                funding_account=provider.accounts[symbol],
                lp_token_account=provider.accounts["LP"],
            )
        for index, market, whole, leverage in SEED_POSITIONS:
            trader, spec = example.traders[index], MARKETS[market]
            token = SPECS[spec.collateral]
            amount = whole * WHOLE[spec.collateral]
            size = usd_of(amount, token.decimals, token.price, token.expo) * leverage
            await trade.open_position(
                env.client,
                trader.wallet,
                Market(env.pool, env.mint(spec.symbol), env.mint(spec.collateral), spec.side),
                collateral_amount=amount,
                size_usd=size,
                price_limit=trade.MAX_PRICE if spec.side == LONG else 0,
                funding_account=trader.accounts[spec.collateral],
            )
        return example


async def new_actor(env: PoolEnv, funds: dict[str, int], minted: dict[str, int]) -> Trader:
    """A wallet with lamports for rent, an account per pool token (funded with ``funds`` whole
    tokens) and an LP token account, all in one transaction the admin pays and mints for."""
    wallet = Keypair()
    owner, admin = wallet.pubkey(), env.admin.pubkey()
    ixs: list[Instruction] = [
        transfer(TransferParams(from_pubkey=admin, to_pubkey=owner, lamports=ACTOR_LAMPORTS))
    ]
    accounts: dict[str, Pubkey] = {}
    for symbol in env.specs:
        mint = env.mint(symbol)
        account = get_associated_token_address(owner, mint)
        ixs.append(create_associated_token_account(admin, owner, mint))
        amount = funds.get(symbol, 0) * WHOLE[symbol]
        if amount:
            ixs.append(mint_to(MintToParams(TOKEN_PROGRAM_ID, mint, account, admin, amount)))
        accounts[symbol] = account
    lp_mint = pda.lp_token_mint(pda.pool(env.pool))
    ixs.append(create_associated_token_account(admin, owner, lp_mint))
    accounts["LP"] = get_associated_token_address(owner, lp_mint)
    await env.client.send(ixs)
    for symbol in env.specs:
        minted[symbol] += funds.get(symbol, 0) * WHOLE[symbol]
    return Trader(wallet, accounts)


# --------------------------------------------------------------------------------------------
# The state machine
# --------------------------------------------------------------------------------------------


class InvariantMachine(RuleBasedStateMachine):
    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.stats = run.stats
        self.stats.examples += 1
        self.rule = "setup"
        example: Example = self._guard("setup", run.new_example())
        self.env = example.env
        self.lps = example.lps
        self.traders = example.traders
        self.keeper = example.keeper
        self.minted = example.minted
        self.prices = {t.symbol: t.price for t in TOKENS}
        """Oracle prices (token exponent) as last posted; EMA is always posted equal to spot."""
        client = self.env.client
        self.symbol_of = {
            client.custody_keys(self.env.pool, self.env.mint(s)).custody: s for s in SYMBOLS
        }
        self.owners = {a.key: a for a in [*self.lps, *self.traders]}
        self.positions: list[tuple[Pubkey, Any]] = []

    # ---- plumbing -------------------------------------------------------------------------

    def _guard(self, rule: str, coro: Coroutine[Any, Any, Any]) -> Any:
        """Runs ``coro`` on the run's loop; a failure is recorded as a violation and re-raised
        (Hypothesis then reports the steps that led to it)."""
        try:
            return self.run.call(coro)
        except Exception as exc:
            kind = "" if isinstance(exc, AssertionError) else f"{type(exc).__name__}: "
            self.stats.violation(rule, f"{kind}{exc}", replay=is_replay())
            raise

    def _step(self, rule: str, coro: Coroutine[Any, Any, Any]) -> None:
        self.rule = rule
        self.stats.steps += 1
        self.stats.steps_per_rule[rule] += 1
        self._guard(rule, coro)
        if self.run.report is not None and self.stats.steps % PROGRESS_STEPS == 0:
            self.stats.finish()
            self.stats.write(self.run.report)

    async def _attempt(
        self,
        rule: str,
        ixs: list[Instruction],
        signers: list[Keypair],
        allowed: set[str],
        watch: list[Pubkey],
    ) -> Outcome:
        out = await attempt(self.env, ixs, signers, allowed=allowed, watch=watch)
        if out.ok:
            self.stats.outcomes[f"{rule}: landed"] += 1
        else:
            assert out.error is not None
            self.stats.rejected(rule, out.error)
        return out

    def _value(self, symbol: str, amount: int) -> Fraction:
        spec = SPECS[symbol]
        return value_usd(amount, spec.decimals, self.prices[symbol], spec.expo)

    def _usd(self, symbol: str, amount: int) -> int:
        spec = SPECS[symbol]
        return usd_of(amount, spec.decimals, self.prices[symbol], spec.expo)

    def _market(self, spec: MarketSpec) -> Market:
        env = self.env
        return Market(env.pool, env.mint(spec.symbol), env.mint(spec.collateral), spec.side)

    def _free_market(self, trader: Trader, index: int) -> MarketSpec | None:
        """The first market from ``index`` on where ``trader`` has no position (one position
        per owner, traded custody and side)."""
        taken = {key for key, _ in self.positions}
        for i in range(len(MARKETS)):
            spec = MARKETS[(index + i) % len(MARKETS)]
            key = trade.position_key(self.env.client, self._market(spec), trader.key)
            if key not in taken:
                return spec
        return None

    def _position(self, index: int, rule: str) -> tuple[Any, Trader, MarketSpec] | None:
        """An open position (by index, wrapping), its owner and market; None when there is
        none. (Not a Hypothesis precondition: what is open depends on the chain, and what
        Hypothesis draws must not.)"""
        if not self.positions:
            self.stats.outcomes[f"{rule}: no position"] += 1
            return None
        _, position = self.positions[index % len(self.positions)]
        side = LONG if type(position.side).__name__ == "Long" else SHORT
        spec = MarketSpec(
            self.symbol_of[position.custody], side, self.symbol_of[position.collateral_custody]
        )
        return position, self.owners[position.owner], spec

    def _lp_price(self, before: Any | None, after: Any | None, action: str) -> None:
        if check_lp_price_kept(before, after, action):
            self.stats.checks["lp price kept"] += 1

    def _no_gain(self, gained: Fraction, allowed: Fraction, what: str) -> None:
        self.stats.checks["no gain at a constant price"] += 1
        if gained > allowed:
            raise Violation(
                f"{what} gained ${float(gained) / USD:.6f} at a constant price "
                f"(allowed ${float(allowed) / USD:.6f})"
            )

    # ---- invariants -----------------------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        self._guard(f"invariants after {self.rule}", self._check_invariants())

    async def _check_invariants(self) -> None:
        env = self.env
        await assert_conserved(env)
        self.stats.checks["custody conservation and book totals"] += 1
        await check_token_supplies(env, self.minted)
        self.stats.checks["global conservation"] += 1
        self.positions = await pool_positions(env)
        await check_solvency(env, [p for _, p in self.positions])
        self.stats.checks["solvency"] += 1

    # ---- liquidity ------------------------------------------------------------------------

    @rule(provider=ACTOR, symbol=TOKEN, pick=AMOUNT)
    def deposit(self, provider: int, symbol: str, pick: tuple[str, int]) -> None:
        self._step("deposit", self._deposit(self.lps[provider], symbol, pick))

    async def _deposit(
        self, actor: Trader, symbol: str, pick: tuple[str, int], rule: str = "deposit"
    ) -> int:
        """Returns the LP tokens received (0 when rejected)."""
        env = self.env
        balance, lp_before = await token_balances(
            env, [actor.accounts[symbol], actor.accounts["LP"]]
        )
        amount = pick_amount(balance, pick)
        before = await lp_view(env)
        ix = await lp.add_liquidity_ix(
            env.client,
            actor.key,
            env.pool,
            env.mint(symbol),
            amount,
            funding_account=actor.accounts[symbol],
            lp_token_account=actor.accounts["LP"],
        )
        watch = [actor.accounts[symbol], actor.accounts["LP"]]
        out = await self._attempt(rule, [ix], [actor.wallet], DEPOSIT_ERRORS, watch)
        after = await lp_view(env)
        self._lp_price(before, after, rule)
        if not out.ok:
            return 0
        (lp_after,) = await token_balances(env, [actor.accounts["LP"]])
        received = lp_after - lp_before
        if after is not None and after.lp_supply:
            # The new LP tokens' share of the pool is worth no more than the deposit.
            share = Fraction(received * after.spot_usd, pricing_supply(after.lp_supply))
            self._no_gain(share - self._value(symbol, amount), Fraction(0), f"{rule} of {symbol}")
        return received

    @rule(provider=ACTOR, symbol=TOKEN, pick=LP_AMOUNT)
    def withdraw(self, provider: int, symbol: str, pick: tuple[str, int]) -> None:
        self._step("withdraw", self._withdraw(self.lps[provider], symbol, pick))

    async def _withdraw(
        self, actor: Trader, symbol: str, pick: tuple[str, int], rule: str = "withdraw"
    ) -> int:
        """Returns the tokens received (0 when rejected)."""
        env = self.env
        lp_balance, before_tokens = await token_balances(
            env, [actor.accounts["LP"], actor.accounts[symbol]]
        )
        if pick[0] == "drain":
            amount = await self._drain_amount(symbol, lp_balance)
        else:
            amount = pick_amount(lp_balance, pick)
        before = await lp_view(env)
        ix = await lp.remove_liquidity_ix(
            env.client,
            actor.key,
            env.pool,
            env.mint(symbol),
            amount,
            receiving_account=actor.accounts[symbol],
            lp_token_account=actor.accounts["LP"],
        )
        watch = [actor.accounts[symbol], actor.accounts["LP"]]
        out = await self._attempt(rule, [ix], [actor.wallet], WITHDRAW_ERRORS, watch)
        after = await lp_view(env)
        self._lp_price(before, after, rule)
        if not out.ok:
            return 0
        (after_tokens,) = await token_balances(env, [actor.accounts[symbol]])
        received = after_tokens - before_tokens
        if before is not None and before.lp_supply:
            share = Fraction(amount * before.spot_usd, redeeming_supply(amount, before.lp_supply))
            self._no_gain(self._value(symbol, received) - share, Fraction(0), f"{rule} of {symbol}")
        return received

    async def _drain_amount(self, symbol: str, lp_balance: int) -> int:
        """The largest LP amount (up to ``lp_balance``) whose withdrawal in ``symbol`` the
        program's quote accepts: it takes the custody's unlocked tokens down to the last unit."""
        env = self.env

        async def accepted(amount: int) -> bool:
            try:
                await views.remove_liquidity_amount_and_fee(
                    env.client, env.pool, env.mint(symbol), amount
                )
            except ViewError as exc:
                return "ZeroAmount" in "\n".join(exc.logs)
            return True

        if lp_balance == 0 or await accepted(lp_balance):
            return lp_balance
        low, high = 0, lp_balance
        while high - low > 1:
            mid = (low + high) // 2
            if await accepted(mid):
                low = mid
            else:
                high = mid
        return max(low, 1)

    # ---- trading --------------------------------------------------------------------------

    @rule(trader=ACTOR, market=st.integers(0, len(MARKETS) - 1), pick=AMOUNT, leverage=LEVERAGE)
    def open_position(self, trader: int, market: int, pick: tuple[str, int], leverage: int) -> None:
        self._step("open", self._open(self.traders[trader], market, pick, leverage, "open"))

    async def _open(
        self, trader: Trader, index: int, pick: tuple[str, int], leverage: int, rule: str
    ) -> tuple[MarketSpec, int, Outcome] | None:
        """Opens on the first free market from ``index``; returns (market, collateral amount,
        outcome), or None when the trader has a position on every market."""
        spec = self._free_market(trader, index)
        if spec is None:
            self.stats.outcomes[f"{rule}: no free market"] += 1
            return None
        env = self.env
        account = trader.accounts[spec.collateral]
        (balance,) = await token_balances(env, [account])
        amount = pick_amount(balance, pick)
        size = self._usd(spec.collateral, amount) * leverage // BPS
        ix = trade.open_position_ix(
            env.client,
            trader.key,
            self._market(spec),
            collateral_amount=amount,
            size_usd=size,
            funding_account=account,
        )
        before = await lp_view(env)
        out = await self._attempt(rule, [ix], [trader.wallet], OPEN_ERRORS, [account])
        self._lp_price(before, await lp_view(env), rule)
        return spec, amount, out

    @rule(position=st.integers(0, 63))
    def close_position(self, position: int) -> None:
        self._step("close", self._close(position, BPS, "close"))

    @rule(position=st.integers(0, 63), close_bps=CLOSE_BPS)
    def partial_close(self, position: int, close_bps: int) -> None:
        self._step("partial close", self._close(position, close_bps, "partial close"))

    async def _close(self, index: int, close_bps: int, rule: str) -> None:
        found = self._position(index, rule)
        if found is None:
            return
        _, owner, spec = found
        account = owner.accounts[spec.collateral]
        ix = trade.close_position_ix(
            self.env.client,
            owner.key,
            self._market(spec),
            receiving_account=account,
            close_bps=close_bps,
        )
        allowed = CLOSE_ERRORS if close_bps == BPS else PARTIAL_CLOSE_ERRORS
        await self._attempt(rule, [ix], [owner.wallet], allowed, [account])

    @rule(position=st.integers(0, 63), pick=AMOUNT)
    def add_collateral(self, position: int, pick: tuple[str, int]) -> None:
        self._step("add collateral", self._add_collateral(position, pick))

    async def _add_collateral(self, index: int, pick: tuple[str, int]) -> None:
        env = self.env
        found = self._position(index, "add collateral")
        if found is None:
            return
        _, owner, spec = found
        account = owner.accounts[spec.collateral]
        (balance,) = await token_balances(env, [account])
        ix = trade.add_collateral_ix(
            env.client,
            owner.key,
            self._market(spec),
            pick_amount(balance, pick),
            funding_account=account,
        )
        before = await lp_view(env)
        await self._attempt(
            "add collateral", [ix], [owner.wallet], ADD_COLLATERAL_ERRORS, [account]
        )
        self._lp_price(before, await lp_view(env), "add collateral")

    @rule(position=st.integers(0, 63), fraction=REMOVE_BPS)
    def remove_collateral(self, position: int, fraction: int) -> None:
        self._step("remove collateral", self._remove_collateral(position, fraction))

    async def _remove_collateral(self, index: int, fraction: int) -> None:
        found = self._position(index, "remove collateral")
        if found is None:
            return
        position, owner, spec = found
        account = owner.accounts[spec.collateral]
        ix = trade.remove_collateral_ix(
            self.env.client,
            owner.key,
            self._market(spec),
            max(1, position.collateral_usd * fraction // BPS),
            receiving_account=account,
        )
        await self._attempt(
            "remove collateral", [ix], [owner.wallet], REMOVE_COLLATERAL_ERRORS, [account]
        )

    # ---- swaps ----------------------------------------------------------------------------

    def _actor(self, index: int) -> Trader:
        return [*self.lps, *self.traders][index]

    @rule(actor=ANY_ACTOR, src=TOKEN, dst=TOKEN, pick=AMOUNT)
    def swap(self, actor: int, src: str, dst: str, pick: tuple[str, int]) -> None:
        if src == dst:
            dst = SYMBOLS[(SYMBOLS.index(src) + 1) % len(SYMBOLS)]
        self._step("swap", self._swap(self._actor(actor), src, dst, pick))

    async def _swap(
        self, actor: Trader, src: str, dst: str, pick: tuple[str, int], rule: str = "swap"
    ) -> int:
        """Returns the tokens received (0 when rejected)."""
        env = self.env
        src_account, dst_account = actor.accounts[src], actor.accounts[dst]
        balance, dst_before = await token_balances(env, [src_account, dst_account])
        amount = pick_amount(balance, pick)
        ix = trade.swap_ix(
            env.client,
            actor.key,
            env.pool,
            env.mint(src),
            env.mint(dst),
            amount,
            funding_account=src_account,
            receiving_account=dst_account,
        )
        before = await lp_view(env)
        watch = [src_account, dst_account]
        out = await self._attempt(rule, [ix], [actor.wallet], SWAP_ERRORS, watch)
        self._lp_price(before, await lp_view(env), rule)
        if not out.ok:
            return 0
        (dst_after,) = await token_balances(env, [dst_account])
        received = dst_after - dst_before
        gained = self._value(dst, received) - self._value(src, amount)
        self._no_gain(gained, Fraction(0), f"{rule} {src}->{dst}")
        return received

    # ---- round trips at a constant price --------------------------------------------------

    @rule(trader=ACTOR, market=st.integers(0, len(MARKETS) - 1), pick=AMOUNT, leverage=LEVERAGE)
    def round_trip_trade(
        self, trader: int, market: int, pick: tuple[str, int], leverage: int
    ) -> None:
        self._step(
            "round trip trade", self._round_trip_trade(self.traders[trader], market, pick, leverage)
        )

    async def _round_trip_trade(
        self, trader: Trader, index: int, pick: tuple[str, int], leverage: int
    ) -> None:
        rule = "round trip trade"
        env = self.env
        spec = self._free_market(trader, index)
        account = trader.accounts[spec.collateral] if spec else None
        start = (await token_balances(env, [account]))[0] if account else 0
        opened = await self._open(trader, index, pick, leverage, rule)
        if opened is None or not opened[2].ok:
            return
        spec, amount, open_out = opened
        account = trader.accounts[spec.collateral]
        ix = trade.close_position_ix(
            env.client, trader.key, self._market(spec), receiving_account=account
        )
        out = await self._attempt(rule, [ix], [trader.wallet], CLOSE_ERRORS, [account])
        if not out.ok:
            return
        assert open_out.signature is not None
        assert out.signature is not None
        (end,) = await token_balances(env, [account])
        opened_event = _event(await events(env, open_out.signature), "PositionOpened")
        closed = _event(await events(env, out.signature), "PositionClosed")
        gained = self._value(spec.collateral, end - start)
        funding = Fraction(closed.funding_received_usd)
        self._no_gain(gained, funding, f"open+close {spec}")
        # Fees paid >= the schedule (SECURITY 17): the open and close fees, less funding
        # received, unless the trader lost the whole collateral first.
        fees = Fraction(opened_event.fee_usd + closed.fee_usd) - funding
        lost = -gained
        self.stats.checks["round trip pays the fee schedule"] += 1
        if lost < min(fees, self._value(spec.collateral, amount)):
            raise Violation(
                f"open+close {spec} lost ${float(lost) / USD:.6f}, less than its fees "
                f"${float(fees) / USD:.6f}"
            )
        self.stats.outcomes[f"{rule}: completed"] += 1

    @rule(actor=ANY_ACTOR, src=TOKEN, dst=TOKEN, pick=AMOUNT)
    def round_trip_swap(self, actor: int, src: str, dst: str, pick: tuple[str, int]) -> None:
        if src == dst:
            dst = SYMBOLS[(SYMBOLS.index(src) + 1) % len(SYMBOLS)]
        self._step("round trip swap", self._round_trip_swap(self._actor(actor), src, dst, pick))

    async def _round_trip_swap(
        self, actor: Trader, src: str, dst: str, pick: tuple[str, int]
    ) -> None:
        rule = "round trip swap"
        accounts = [actor.accounts[src], actor.accounts[dst]]
        start = await token_balances(self.env, accounts)
        received = await self._swap(actor, src, dst, pick, rule)
        if received == 0 or await self._swap(actor, dst, src, ("units", received), rule) == 0:
            return
        end = await token_balances(self.env, accounts)
        gained = self._value(src, end[0] - start[0]) + self._value(dst, end[1] - start[1])
        self._no_gain(gained, Fraction(0), f"swap {src}->{dst}->{src}")
        self.stats.outcomes[f"{rule}: completed"] += 1

    @rule(provider=ACTOR, src=TOKEN, dst=TOKEN, pick=AMOUNT)
    def round_trip_liquidity(
        self, provider: int, src: str, dst: str, pick: tuple[str, int]
    ) -> None:
        self._step(
            "round trip liquidity", self._round_trip_liquidity(self.lps[provider], src, dst, pick)
        )

    async def _round_trip_liquidity(
        self, actor: Trader, src: str, dst: str, pick: tuple[str, int]
    ) -> None:
        rule = "round trip liquidity"
        accounts = [actor.accounts[src], actor.accounts[dst]]
        start = await token_balances(self.env, accounts)
        received = await self._deposit(actor, src, pick, rule)
        if received == 0 or await self._withdraw(actor, dst, ("units", received), rule) == 0:
            return
        end = await token_balances(self.env, accounts)
        if src == dst:
            gained = self._value(src, end[0] - start[0])
        else:
            gained = self._value(src, end[0] - start[0]) + self._value(dst, end[1] - start[1])
        self._no_gain(gained, Fraction(0), f"deposit {src} -> withdraw {dst}")
        self.stats.outcomes[f"{rule}: completed"] += 1

    # ---- oracle, clock, cranks ------------------------------------------------------------

    @rule(symbol=TOKEN, move=PRICE_MOVES)
    def move_price(self, symbol: str, move: int) -> None:
        self._step("price move", self._move_price(symbol, move))

    async def _move_price(self, symbol: str, move: int) -> None:
        if SPECS[symbol].stable:
            move //= 20
        await self._post_price(symbol, self.prices[symbol] * (BPS + move) // BPS)
        self.stats.outcomes["price move: " + ("down" if move < 0 else "up")] += 1

    async def _post_price(self, symbol: str, price: int) -> None:
        """Posts ``price`` (kept within 20x of the start, stablecoins within 10%) and re-posts
        the other prices, so that none is stale."""
        spec = SPECS[symbol]
        if spec.stable:
            low, high = spec.price * 9 // 10, spec.price * 11 // 10
        else:
            low, high = spec.price // 20, spec.price * 20
        price = min(max(price, low), high)
        await set_prices(self.env, **{symbol: price})
        self.prices[symbol] = price

    @rule(symbol=st.sampled_from(["SOL", "ETH"]), move=SHARP_MOVES)
    def sharp_price_move(self, symbol: str, move: int) -> None:
        self._step("sharp price move", self._move_price(symbol, move))

    @rule(position=st.integers(0, 63), beyond=BEYOND_BPS)
    def price_to_liquidation(self, position: int, beyond: int) -> None:
        self._step("price to liquidation", self._price_to_liquidation(position, beyond))

    async def _price_to_liquidation(self, index: int, beyond: int) -> None:
        """Moves a position's market to ``beyond`` bps past the price at which it reaches the
        maintenance margin (the program's view), then runs the keeper's pass: small steps
        past it land in the ladder's first (partial) step, larger ones in the last."""
        env = self.env
        found = self._position(index, "price to liquidation")
        if found is None:
            return
        _, owner, spec = found
        market = self._market(spec)
        try:
            threshold = await views.liquidation_price(env.client, market, owner.key)
        except ViewError:
            # A stale oracle: the keeper's oracle job re-posts prices first.
            await set_prices(env)
            threshold = await views.liquidation_price(env.client, market, owner.key)
        if threshold == 0 or threshold >= U64_MAX:
            self.stats.outcomes["price to liquidation: none"] += 1
            return
        scale = 10 ** (9 + SPECS[spec.symbol].expo)
        if spec.side == LONG:
            price = threshold // scale * (BPS - beyond) // BPS
        else:
            price = -(-threshold * (BPS + beyond) // (scale * BPS))
        await self._post_price(spec.symbol, price)
        await self._liquidate()

    @rule(seconds=CLOCK_STEPS, refresh=st.sampled_from([True, True, True, False]))
    def advance_clock(self, seconds: int, refresh: bool) -> None:
        self._step("clock", self._advance(seconds, refresh))

    async def _advance(self, seconds: int, refresh: bool) -> None:
        await self.env.advance(seconds)
        if refresh:
            # What the keeper's oracle job does: re-post the current prices.
            await set_prices(self.env)

    @rule(
        kind=st.sampled_from(["accrue_borrow", "update_funding", "update_pool_aum"]), symbol=TOKEN
    )
    def crank(self, kind: str, symbol: str) -> None:
        self._step(kind, self._crank(kind, symbol))

    async def _crank(self, kind: str, symbol: str) -> None:
        env = self.env
        client = env.client
        keys = client.custody_keys(env.pool, env.mint(symbol))
        accounts = {"pool": keys.pool, "custody": keys.custody}
        if kind == "update_pool_aum":
            remaining = await client.pool_remaining_accounts(env.pool)
            ix = client.ix(kind, accounts={"pool": keys.pool}, remaining=remaining)
        else:
            ix = client.ix(kind, accounts=accounts)
        before = await lp_view(env)
        await self._attempt(kind, [ix], [], CRANK_ERRORS, [])
        self._lp_price(before, await lp_view(env), kind)

    # ---- liquidations ---------------------------------------------------------------------

    @rule()
    def liquidate(self) -> None:
        self._step("liquidate", self._liquidate())

    async def _liquidate(self) -> None:
        """The keeper's pass: every position the keeper's evaluation finds liquidatable is
        liquidated (re-evaluated after each, as one liquidation moves rates and the book), one
        healthy position is tried to see the program refuse it, and one on a stale oracle."""
        tried: set[Pubkey] = set()
        for _ in range(4 * len(MARKETS) * len(self.traders)):
            verdicts = await self._evaluate()
            due = [k for k, v in verdicts.items() if v == "liquidatable" and k not in tried]
            if not due:
                break
            tried.add(due[0])
            await self._liquidate_one(due[0], verdicts[due[0]])
        verdicts = await self._evaluate()
        for wanted in ("healthy", "stale"):
            found = [k for k, v in verdicts.items() if v == wanted and k not in tried]
            if found:
                await self._liquidate_one(found[0], wanted)

    async def _evaluate(self) -> dict[Pubkey, str]:
        """Each position's verdict by the keeper's evaluation: ``liquidatable``, ``healthy``
        or ``stale`` when it holds at the clock's second and the two after (a transaction
        lands within them), else ``either``."""
        rpc = self.run.keeper_rpc
        snapshot = await load_pool(rpc, self.env.pool)
        records: list[PositionRecord] = await load_positions(rpc, snapshot.key)
        now = (await clock(rpc)).unix_timestamp
        states = {key: info.state for key, info in snapshot.custodies.items()}
        seen: dict[Pubkey, set[str]] = {r.key: set() for r in records}
        for t in (now, now + 1, now + 2):
            prices: dict[Pubkey, q.Prices | str] = {}
            for key, info in snapshot.custodies.items():
                try:
                    prices[key] = info.prices(t)
                except q.PROGRAM_ERRORS as exc:
                    prices[key] = str(getattr(exc, "program_error", exc))
            result = evaluate(records, states, prices, t, snapshot.aum_usd)
            due = {c.position.key for c in result.candidates}
            for record in records:
                error = result.errors.get(record.key)
                if record.key in due:
                    seen[record.key].add("liquidatable")
                elif error is not None:
                    seen[record.key].add("stale" if error == "StaleOraclePrice" else error)
                else:
                    seen[record.key].add("healthy")
        return {key: next(iter(v)) if len(v) == 1 else "either" for key, v in seen.items()}

    async def _liquidate_one(self, key: Pubkey, verdict: str) -> None:
        env = self.env
        position = next((p for k, p in await pool_positions(env) if k == key), None)
        if position is None:
            return
        owner = self.owners[position.owner]
        side = LONG if type(position.side).__name__ == "Long" else SHORT
        spec = MarketSpec(
            self.symbol_of[position.custody], side, self.symbol_of[position.collateral_custody]
        )
        collateral = spec.collateral
        ix = trade.liquidate_ix(
            env.client,
            self.keeper.key,
            self._market(spec),
            owner.key,
            receiving_account=self.keeper.accounts[collateral],
            owner_receiving_account=owner.accounts[collateral],
        )
        allowed = {
            "liquidatable": set(),
            "healthy": {"NotLiquidatable"},
            "stale": STALE,
            "either": {"NotLiquidatable"} | STALE,
        }.get(verdict)
        if allowed is None:
            raise Violation(f"the keeper could not evaluate {key}: {verdict}")
        watch = [self.keeper.accounts[collateral], owner.accounts[collateral]]
        out = await self._attempt("liquidate", [ix], [self.keeper.wallet], allowed, watch)
        if verdict in ("healthy", "stale") and out.ok:
            raise Violation(f"the program liquidated {key}, which the keeper finds {verdict}")
        if not out.ok:
            return
        assert out.signature is not None
        event = _event(await events(env, out.signature), "PositionLiquidated")
        kind = "full" if event.close_bps == BPS else "partial"
        self.stats.outcomes[f"liquidation: {kind}, step {event.step}"] += 1
        if event.bad_debt_usd:
            self.stats.outcomes["liquidation: bad debt"] += 1
        positions = [p for _, p in await pool_positions(env)]
        await check_solvency(env, positions)
        self.stats.checks["solvency after a liquidation"] += 1


def _event(found: list[Any], name: str) -> Any:
    matching = [e.data for e in found if e.name == name]
    assert len(matching) == 1, [e.name for e in found]
    return matching[0]


# --------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


async def _start(loop: asyncio.AbstractEventLoop, net: LocalnetProcess, stats: RunStats) -> Run:
    base = await build_pool_env(net.url, net.faucet(), TOKENS, CONFIGS)
    config = load_config(None, {"PERPOOL_KEEPER__RPC__URLS": net.url})
    return Run(loop, base, RpcPool(config.rpc, Keypair(), Metrics()), stats)


async def _stop(run: Run) -> None:
    await run.keeper_rpc.close()
    await run.base.client.close()


def test_invariants_hold_over_random_sequences(
    net: LocalnetProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    examples, steps = run_size(
        os.environ.get("PERPOOL_INVARIANT_STEPS"), DEFAULT_EXAMPLES, DEFAULT_STEPS, MAX_EXAMPLES
    )
    run_seed = int(os.environ.get("PERPOOL_INVARIANT_SEED", DEFAULT_SEED))
    stats = RunStats(seed=run_seed, max_examples=examples, steps_per_example=steps)
    loop = asyncio.new_event_loop()
    report = os.environ.get("PERPOOL_INVARIANT_REPORT")
    run: Run = loop.run_until_complete(_start(loop, net, stats))
    run.report = Path(report) if report else None

    def machine() -> InvariantMachine:
        return InvariantMachine(run)

    config = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    try:
        # Hypothesis accepts any factory of machines; its stub asks for the class.
        factory = cast(type[RuleBasedStateMachine], seed(run_seed)(machine))
        run_state_machine_as_test(factory, settings=config)
    finally:
        stats.finish()
        if run.report is not None:
            stats.write(run.report)
        with capsys.disabled():
            print(f"\n{stats.summary()}")
        loop.run_until_complete(_stop(run))
        loop.close()
    assert stats.steps >= examples, stats.report()
    assert not stats.violations, stats.violations
