"""Python mirror of the program's business quotes and the view instructions built on them.

Built on :mod:`perpool.math` (the integer primitives); every function here names the Rust
function it mirrors and reproduces its order of checks, rounding and errors.

Inputs are small frozen dataclasses with the IDL's field names (snake_case, as anchorpy
decodes them): :class:`CustodyState`, :class:`PositionState`, :class:`Prices`,
:class:`PricedCustody`. Each has ``from_account(decoded)`` for an anchorpy-decoded account.
Outputs have exactly the fields of the Rust return structs (:class:`OpenQuote`,
:class:`CloseQuote`, :class:`AddLiquidityQuote`, :class:`RemoveLiquidityQuote`,
:class:`SwapQuote`, :class:`PositionPnl`, :class:`AumView`, :class:`OraclePriceView`) and a
``from_decoded(value)`` that turns a view's decoded return value into the same dataclass, so a
cross-check is a plain ``==``.

Errors: a failed ``require!`` raises :class:`QuoteError` whose ``program_error`` is the
``PerpoolError`` variant name; a failed math step raises :class:`perpool.math.MathError`, whose
``program_error`` is what the program reports for it. Catch both as :data:`PROGRAM_ERRORS`.

Cross-checking the program's views (one Python function per view instruction, same name)::

    from perpool import quotes as q

    now = clock.unix_timestamp  # the cluster's clock at the simulated slot
    custody = q.CustodyState.from_account(await program.account["Custody"].fetch(key), key=key)
    oracle = q.CustomOracleState.from_account(await program.account["CustomOracle"].fetch(o))
    prices = q.read_custody_prices(custody, oracle, now)  # oracle checks + payoff transform
    aum = (await program.account["Pool"].fetch(pool_key)).aum_usd  # the stored pool AUM
    position = q.PositionState.from_account(await program.account["Position"].fetch(pos_key))

    # a long: the traded custody is also the collateral custody
    expected = q.get_pnl(position, custody, prices, custody, prices, now, aum)
    assert q.PositionPnl.from_decoded(simulated_return_value) == expected

    pool = [q.PricedCustody(c, p) for c, p in zip(custodies, prices_in_pool_order)]
    assert q.AumView.from_decoded(view) == q.get_assets_under_management(pool, lp_supply)

View instruction -> Python (arguments in the program's account order; ``custody`` is the
traded custody, ``other_custody`` the collateral / dispensing one):

====================================  ========================================================
``get_entry_price_and_fee``           ``get_entry_price_and_fee(side, custody, prices,
                                      collateral_custody, collateral_prices, collateral_amount,
                                      size_usd, pool_aum_usd) -> OpenQuote``
``get_exit_price_and_fee``            ``get_exit_price_and_fee(position, custody, prices,
                                      collateral_custody, collateral_prices, now, close_bps,
                                      pool_aum_usd) -> CloseQuote``
``get_pnl``                           ``get_pnl(position, ..., now, pool_aum_usd)
                                      -> PositionPnl``
``get_liquidation_price``             ``get_liquidation_price(position, ..., now,
                                      pool_aum_usd) -> int``
``get_liquidation_state``             ``get_liquidation_state(position, ..., now,
                                      pool_aum_usd) -> bool``
``get_assets_under_management``       ``get_assets_under_management(custodies, lp_supply)
                                      -> AumView``
``get_add_liquidity_amount_and_fee``  ``get_add_liquidity_amount_and_fee(custodies,
                                      custody_key, lp_supply, amount_in)``
``get_remove_liquidity_amount_...``   ``get_remove_liquidity_amount_and_fee(custodies,
                                      custody_key, lp_supply, lp_amount_in)``
``get_swap_amount_and_fees``          ``get_swap_amount_and_fees(receiving, receiving_prices,
                                      dispensing, dispensing_prices, amount_in)``
``get_oracle_price``                  ``get_oracle_price(prices) -> OraclePriceView``
====================================  ========================================================

``custodies`` is every custody of the pool **in pool order** with its prices
(:class:`PricedCustody`), exactly what the views take as remaining accounts. For a long, pass
the same :class:`CustodyState` as ``custody`` and ``collateral_custody``.

The business functions under the views are public too: :func:`quote_open`,
:func:`quote_close`, :func:`position_liquidation_step`, :func:`position_is_liquidatable`,
:func:`aum_usd`, :func:`quote_add_liquidity`, :func:`quote_remove_liquidity`,
:func:`quote_swap`; and the bookkeeping the instructions do with them: :func:`accrue_borrow`,
:func:`accrue_funding`, :func:`settle_close`, :func:`remove_from_book`, :func:`collect_fee`,
:func:`cover_bad_debt`, :func:`add_to_insurance`, :func:`close_fee_amount`,
:func:`close_position_remainder`, :func:`liquidation_amounts`. :func:`close_position` and
:func:`liquidate` mirror those instructions' whole settlement. State-changing functions return
a new :class:`CustodyState` (or :class:`PositionState`).

Pool AUM: price impact (slippage) and the funding rate are relative to the ``Pool`` account's
*stored* ``aum_usd`` (refreshed by ``add_liquidity`` and ``update_pool_aum``), not the AUM
computed from prices: pass that field as ``pool_aum_usd``. It may be omitted (``None``) only
for a custody without a price-impact curve on the position's side; otherwise a
``ValueError`` says so rather than quoting a wrong price.

Prices: every ``prices`` argument is what ``Custody::prices`` returns, i.e. for a payoff
market ``payoff(P)`` of the oracle price (:func:`custody_prices`,
:func:`read_custody_prices`); for a token custody the oracle's prices as they are.

Views over a position take ``now`` (the cluster's ``unix_timestamp`` of the simulated slot)
because the program accrues the collateral custody's borrow index and the traded custody's
funding indices to ``now`` on copies before quoting; borrow fee and funding are the parts of a
position view that depend on time. The oracle checks (age, confidence) also depend on ``now``:
use :func:`read_custom_oracle` with the same ``now`` to reproduce a stale-price failure.

Custody keys: :class:`CustodyState` carries an optional ``key`` (any comparable value, e.g. a
``solders`` ``Pubkey``). It is used where the program compares account addresses (a long's
custody must be its collateral custody; a swap needs two custodies; LP quotes find the custody
in the pool). ``None`` means "unknown": those checks then trust the caller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from perpool.math import (
    BPS_DENOMINATOR,
    I64_MAX,
    I64_MIN,
    LOCKED_LP_SUPPLY,
    MAX_STEPS,
    RATE_ONE,
    U64_MAX,
    U128_MAX,
    MathError,
    OraclePrice,
    PayoffFn,
    Side,
    Step,
    Valuation,
    accrue_index,
    apply_impact,
    check_i64,
    check_u64,
    close_amounts,
    custody_value_usd,
    entry_price_9dp,
    exit_price_9dp,
    fee_tokens,
    fee_usd,
    fee_usd_with_minimum,
    funding_parts,
    funding_rate,
    hourly_borrow_rate,
    leverage_bps,
    liquidation_price,
    lp_to_mint_after_fee,
    lp_token_price_usd,
    maintenance_margin_bps_for_max_leverage,
    margin_usd,
    max_profit_usd,
    mul_div_floor,
    mul_div_floor_u64,
    partial_close,
    payoff_price,
    price_impact,
    price_within_confidence,
    ratio_bps,
    split_bps_ceil,
    split_bps_floor,
    split_discount,
    split_fee,
    step_discount_bps,
    to_u64,
    token_to_usd_ceil,
    token_to_usd_floor,
    usd_for_lp,
    usd_to_token_ceil,
    usd_to_token_ceil_saturating,
    usd_to_token_floor,
    usd_to_token_floor_saturating,
    utilization_ceil,
)
from perpool.math import accrue_funding as math_accrue_funding
from perpool.math import borrow_fee_usd as math_borrow_fee_usd
from perpool.math import funding_usd as math_funding_usd
from perpool.math import liquidation_step as math_liquidation_step
from perpool.math import liquidity_fee_bps as math_liquidity_fee_bps

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "PROGRAM_ERRORS",
    "AddLiquidityQuote",
    "Assets",
    "AumView",
    "BorrowRateParams",
    "BorrowRateState",
    "ClosePositionResult",
    "CloseQuote",
    "CustodyState",
    "CustomOracleState",
    "Fees",
    "FundingParams",
    "FundingState",
    "InsuranceFund",
    "LiquidationAmounts",
    "LiquidationParams",
    "LiquidationResult",
    "OpenQuote",
    "OracleLimits",
    "OraclePriceView",
    "PayoffParams",
    "PositionPnl",
    "PositionState",
    "PositionTotals",
    "PricedCustody",
    "Prices",
    "PricingParams",
    "QuoteError",
    "RemoveLiquidityQuote",
    "SlippageParams",
    "SwapQuote",
    "TokenRatios",
    "accrue_borrow",
    "accrue_funding",
    "add_to_insurance",
    "aum_usd",
    "available",
    "book_profit_cap",
    "book_value_usd",
    "check_side",
    "close_fee_amount",
    "close_position",
    "close_position_remainder",
    "collect_fee",
    "cover_bad_debt",
    "custody_hourly_borrow_rate",
    "custody_liquidity_fee_bps",
    "custody_prices",
    "custody_utilization",
    "execution_price",
    "funding_after",
    "funding_index",
    "get_add_liquidity_amount_and_fee",
    "get_assets_under_management",
    "get_entry_price_and_fee",
    "get_exit_price_and_fee",
    "get_liquidation_price",
    "get_liquidation_state",
    "get_oracle_price",
    "get_pnl",
    "get_remove_liquidity_amount_and_fee",
    "get_swap_amount_and_fees",
    "insurance_room",
    "liquidate",
    "liquidation_amounts",
    "load_position_custodies",
    "locked_usd",
    "maintenance_margin_bps",
    "payoff_from_decoded",
    "position_borrow_fee_usd",
    "position_funding_usd",
    "position_is_liquidatable",
    "position_liquidation_step",
    "quote_add_liquidity",
    "quote_close",
    "quote_open",
    "quote_remove_liquidity",
    "quote_swap",
    "read_custody_prices",
    "read_custom_oracle",
    "refresh_borrow_rate",
    "refresh_funding_rate",
    "remove_from_book",
    "require_tokens",
    "settle_close",
    "side_from_decoded",
    "size_over_entry",
    "trade_price",
    "trading_fee_usd",
]


# --- errors ------------------------------------------------------------------------------------


class QuoteError(Exception):
    """A ``require!`` in the program failed; ``program_error`` is the ``PerpoolError`` name."""

    def __init__(self, program_error: str) -> None:
        super().__init__(program_error)
        self.program_error = program_error

    def __repr__(self) -> str:
        return f"QuoteError({self.program_error})"


#: Everything a quote raises for inputs the program would reject (both expose
#: ``program_error``).
PROGRAM_ERRORS = (QuoteError, MathError)


def _require(condition: bool, program_error: str) -> None:
    if not condition:
        raise QuoteError(program_error)


def _checked_add(a: int, b: int, high: int = U64_MAX) -> int:
    """``a.checked_add(b).ok_or(PerpoolError::MathOverflow)``."""
    total = a + b
    _require(total <= high, "MathOverflow")
    return total


def _checked_sub(a: int, b: int) -> int:
    """``a.checked_sub(b).ok_or(PerpoolError::MathOverflow)`` on unsigned values."""
    _require(a >= b, "MathOverflow")
    return a - b


# --- adapters from anchorpy-decoded values -----------------------------------------------------

_T = TypeVar("_T", bound="DataclassInstance")


def _get(obj: Any, name: str) -> Any:
    """A field of an anchorpy-decoded value (attribute) or of a plain mapping (key)."""
    if isinstance(obj, Mapping):
        return obj[name]
    return getattr(obj, name)


def _flat_from_decoded(cls: type[_T], obj: Any) -> _T:
    """Build a dataclass of int fields from a decoded value with the same field names."""
    return cls(**{f.name: int(_get(obj, f.name)) for f in fields(cls)})


class _FromDecoded:
    """Gives an int-field dataclass ``from_decoded(value)``: build it from an anchorpy-decoded
    struct (or view return value) with the same field names."""

    @classmethod
    def from_decoded(cls, obj: Any) -> Self:
        built: Self = _flat_from_decoded(cast(Any, cls), obj)
        return built


def side_from_decoded(value: Any) -> Side:
    """A :class:`Side` from our enum, ``"Long"``/``"Short"``, or anchorpy's decoded enum
    (an instance of a class named ``Long``/``Short``)."""
    if isinstance(value, Side):
        return value
    if isinstance(value, str):
        return Side(value)
    return Side(type(value).__name__)


# --- inputs: custody, position, prices ---------------------------------------------------------


@dataclass(frozen=True)
class PricingParams(_FromDecoded):
    min_initial_leverage: int = 0
    max_initial_leverage: int = 0
    max_leverage: int = 0
    max_utilization_bps: int = 0
    max_position_size_usd: int = 0
    max_long_open_interest_usd: int = 0
    max_short_open_interest_usd: int = 0
    min_trade_size_usd: int = 0
    min_liquidity_deposit_usd: int = 0


@dataclass(frozen=True)
class Fees(_FromDecoded):
    """Trading fees (each at least ``min_fee_usd``), the swap fee, the dynamic LP fee curve
    (see :func:`custody_liquidity_fee_bps`), the full liquidation discount and the protocol's
    share of trading, swap and borrow fees."""

    open_position_bps: int = 0
    close_position_bps: int = 0
    min_fee_usd: int = 0
    swap_bps: int = 0
    liquidity_min_fee_bps: int = 0
    liquidity_max_fee_bps: int = 0
    liquidity_fee_k_bps: int = 0
    liquidation_reward_bps: int = 0
    protocol_share_bps: int = 0


@dataclass(frozen=True)
class BorrowRateParams(_FromDecoded):
    base_rate: int = 0
    slope1: int = 0
    slope2: int = 0
    optimal_utilization: int = 0


@dataclass(frozen=True)
class BorrowRateState(_FromDecoded):
    current_rate: int = 0
    cumulative_interest: int = 0
    last_update: int = 0


@dataclass(frozen=True)
class Assets(_FromDecoded):
    owned: int = 0
    locked: int = 0
    collateral: int = 0
    protocol_fees: int = 0


@dataclass(frozen=True)
class PositionTotals(_FromDecoded):
    open_positions: int = 0
    size_usd: int = 0
    collateral_usd: int = 0
    size_over_entry: int = 0


@dataclass(frozen=True)
class TokenRatios(_FromDecoded):
    target_bps: int = 0
    min_bps: int = 0
    max_bps: int = 0


@dataclass(frozen=True)
class OracleLimits(_FromDecoded):
    """The numeric part of ``OracleParams`` (the account and feed id are not math)."""

    max_price_error_bps: int = 10_000
    max_price_age_sec: int = 86_400


def _one_step_ladder() -> tuple[Step, ...]:
    padding = (Step(),) * (MAX_STEPS - 1)
    return (Step(BPS_DENOMINATOR, BPS_DENOMINATOR), *padding)


@dataclass(frozen=True)
class LiquidationParams:
    """``state/risk.rs`` ``LiquidationParams``: the ladder (``MAX_STEPS`` slots, the first
    ``num_steps`` used), the flat auto-close fee and where liquidation discounts go. The
    default is the one-step auto-close at the maintenance margin."""

    steps: tuple[Step, ...] = field(default_factory=_one_step_ladder)
    num_steps: int = 1
    auto_close_fee_usd: int = 0
    insurance_fund_fraction_bps: int = 0
    insurance_fund_cap_usd: int = 0

    @classmethod
    def from_decoded(cls, obj: Any) -> LiquidationParams:
        steps = tuple(
            Step(int(_get(s, "margin_fraction_bps")), int(_get(s, "close_bps")))
            for s in _get(obj, "steps")
        )
        scalars = {f.name: int(_get(obj, f.name)) for f in fields(cls) if f.name != "steps"}
        return cls(steps=steps, **scalars)

    def ladder(self) -> tuple[Step, ...]:
        """``LiquidationParams::ladder``: the steps in use."""
        return self.steps[: min(self.num_steps, MAX_STEPS)]


@dataclass(frozen=True)
class FundingParams(_FromDecoded):
    #: C in hours (0 = funding off).
    funding_c: int = 0
    max_hourly_rate: int = 0


@dataclass(frozen=True)
class FundingState(_FromDecoded):
    #: Hourly rate set at the last accrual (9 dp, signed: positive = longs pay).
    current_rate: int = 0
    long_index: int = 0
    short_index: int = 0
    last_update: int = 0


@dataclass(frozen=True)
class SlippageParams(_FromDecoded):
    long_a_bps: int = 0
    long_b_bps: int = 0
    short_a_bps: int = 0
    short_b_bps: int = 0

    def for_side(self, side: Side) -> tuple[int, int]:
        """(A, B) of the side's impact curve."""
        if side is Side.LONG:
            return self.long_a_bps, self.long_b_bps
        return self.short_a_bps, self.short_b_bps


def payoff_from_decoded(value: Any) -> PayoffFn:
    """A :class:`PayoffFn` from itself, a variant name, or anchorpy's decoded ``PayoffKind``."""
    if isinstance(value, PayoffFn):
        return value
    if isinstance(value, str):
        return PayoffFn(value)
    return PayoffFn(type(value).__name__)


@dataclass(frozen=True)
class PayoffParams:
    """What the custody trades: a real token (``SPOT``) or ``k * payoff(P)`` (``scale`` = k,
    9 dp) with profits capped at ``max_profit_bps`` of size."""

    kind: PayoffFn = PayoffFn.SPOT
    scale: int = 0
    max_profit_bps: int = 0

    @classmethod
    def from_decoded(cls, obj: Any) -> PayoffParams:
        return cls(
            kind=payoff_from_decoded(_get(obj, "kind")),
            scale=int(_get(obj, "scale")),
            max_profit_bps=int(_get(obj, "max_profit_bps")),
        )

    @property
    def is_synthetic(self) -> bool:
        return self.kind is not PayoffFn.SPOT


@dataclass(frozen=True)
class InsuranceFund(_FromDecoded):
    """Insurance fund tokens held in the custody's vault and its running totals."""

    balance: int = 0
    total_inflow: int = 0
    total_outflow: int = 0
    bad_debt_covered_usd: int = 0
    bad_debt_uncovered_usd: int = 0


@dataclass(frozen=True)
class CustodyState:
    """The math-relevant part of a ``Custody`` account (stats and addresses left out)."""

    decimals: int
    is_stable: bool = False
    oracle: OracleLimits = field(default_factory=OracleLimits)
    pricing: PricingParams = field(default_factory=PricingParams)
    fees: Fees = field(default_factory=Fees)
    borrow_rate: BorrowRateParams = field(default_factory=BorrowRateParams)
    borrow_state: BorrowRateState = field(default_factory=BorrowRateState)
    assets: Assets = field(default_factory=Assets)
    longs: PositionTotals = field(default_factory=PositionTotals)
    shorts: PositionTotals = field(default_factory=PositionTotals)
    ratios: TokenRatios = field(default_factory=TokenRatios)
    liquidation: LiquidationParams = field(default_factory=LiquidationParams)
    funding: FundingParams = field(default_factory=FundingParams)
    slippage: SlippageParams = field(default_factory=SlippageParams)
    payoff: PayoffParams = field(default_factory=PayoffParams)
    funding_state: FundingState = field(default_factory=FundingState)
    insurance: InsuranceFund = field(default_factory=InsuranceFund)
    #: The custody's address, or None when unknown (see the module docstring).
    key: object = None

    @classmethod
    def from_account(cls, decoded: Any, key: object = None) -> CustodyState:
        """From an anchorpy-decoded ``Custody`` account (``program.account["Custody"]``)."""
        return cls(
            decimals=int(_get(decoded, "decimals")),
            is_stable=bool(_get(decoded, "is_stable")),
            oracle=OracleLimits.from_decoded(_get(decoded, "oracle")),
            pricing=PricingParams.from_decoded(_get(decoded, "pricing")),
            fees=Fees.from_decoded(_get(decoded, "fees")),
            borrow_rate=BorrowRateParams.from_decoded(_get(decoded, "borrow_rate")),
            borrow_state=BorrowRateState.from_decoded(_get(decoded, "borrow_state")),
            assets=Assets.from_decoded(_get(decoded, "assets")),
            longs=PositionTotals.from_decoded(_get(decoded, "longs")),
            shorts=PositionTotals.from_decoded(_get(decoded, "shorts")),
            ratios=TokenRatios.from_decoded(_get(decoded, "ratios")),
            liquidation=LiquidationParams.from_decoded(_get(decoded, "liquidation")),
            funding=FundingParams.from_decoded(_get(decoded, "funding")),
            slippage=SlippageParams.from_decoded(_get(decoded, "slippage")),
            payoff=PayoffParams.from_decoded(_get(decoded, "payoff")),
            funding_state=FundingState.from_decoded(_get(decoded, "funding_state")),
            insurance=InsuranceFund.from_decoded(_get(decoded, "insurance")),
            key=key,
        )

    @property
    def is_synthetic(self) -> bool:
        """A payoff market: it holds no tokens (``Custody::is_synthetic``)."""
        return self.payoff.is_synthetic

    def totals(self, side: Side) -> PositionTotals:
        return self.longs if side is Side.LONG else self.shorts

    def with_totals(self, side: Side, totals: PositionTotals) -> CustodyState:
        if side is Side.LONG:
            return dataclasses.replace(self, longs=totals)
        return dataclasses.replace(self, shorts=totals)


@dataclass(frozen=True)
class PositionState:
    """The math-relevant part of a ``Position`` account."""

    side: Side
    price: int
    size_usd: int
    collateral_usd: int
    collateral_amount: int
    locked_amount: int
    borrow_index_snapshot: int = 0
    unpaid_borrow_fee_usd: int = 0
    funding_index_snapshot: int = 0
    #: Funding settled into the position but not yet paid (negative = owed to it).
    unpaid_funding_usd: int = 0

    @classmethod
    def from_account(cls, decoded: Any) -> PositionState:
        """From an anchorpy-decoded ``Position`` account (``program.account["Position"]``)."""
        return cls(
            side=side_from_decoded(_get(decoded, "side")),
            **{f.name: int(_get(decoded, f.name)) for f in fields(cls) if f.name != "side"},
        )


@dataclass(frozen=True)
class Prices:
    """A validated price pair (``state/oracle.rs`` ``Prices``): spot and EMA, same exponent."""

    spot: OraclePrice
    ema: OraclePrice

    def __post_init__(self) -> None:
        # The program only builds pairs with one exponent, and max()/min() compare mantissas.
        if self.spot.exponent != self.ema.exponent:
            raise ValueError("spot and ema must share an exponent")

    @classmethod
    def of(cls, price: int, exponent: int, ema: int | None = None) -> Prices:
        """Spot ``price * 10**exponent``; EMA the same unless given (same exponent)."""
        return cls(
            OraclePrice(price, exponent), OraclePrice(price if ema is None else ema, exponent)
        )

    @classmethod
    def from_custom_oracle(cls, decoded: Any) -> Prices:
        """Raw prices of a ``CustomOracle`` account, without the program's validity checks
        (use :func:`read_custom_oracle` for those)."""
        oracle = CustomOracleState.from_account(decoded)
        return cls.of(oracle.price, oracle.expo, oracle.ema)

    def max(self) -> OraclePrice:
        """The higher of spot and EMA (favours the pool where a higher price does)."""
        return self.ema if self.ema.price > self.spot.price else self.spot

    def min(self) -> OraclePrice:
        """The lower of spot and EMA."""
        return self.ema if self.ema.price < self.spot.price else self.spot


@dataclass(frozen=True)
class PricedCustody:
    """A custody of the pool with its validated prices (``state/pool.rs`` ``PricedCustody``)."""

    custody: CustodyState
    prices: Prices


@dataclass(frozen=True)
class CustomOracleState:
    price: int
    expo: int
    conf: int
    ema: int
    publish_time: int

    @classmethod
    def from_account(cls, decoded: Any) -> CustomOracleState:
        """From an anchorpy-decoded ``CustomOracle`` account."""
        return _flat_from_decoded(cls, decoded)


#: ``state/oracle.rs`` ``MAX_ABS_EXPONENT``.
MAX_ABS_EXPONENT = 18


def read_custom_oracle(oracle: CustomOracleState, limits: OracleLimits, now: int) -> Prices:
    """``OracleParams::read`` for a custom oracle: the same checks, in the same order
    (account ownership and address checks are not math and are left to the caller)."""
    # read_custom: u64 -> i64 conversion of both prices.
    _require(oracle.price <= I64_MAX and oracle.ema <= I64_MAX, "InvalidOraclePrice")
    _require(oracle.price > 0 and oracle.ema > 0, "InvalidOraclePrice")
    _require(abs(oracle.expo) <= MAX_ABS_EXPONENT, "InvalidOraclePrice")
    _require(oracle.publish_time <= now, "InvalidPublishTime")
    age = check_i64(now) - oracle.publish_time
    _require(age <= I64_MAX, "MathOverflow")  # i64 checked_sub
    _require(age <= limits.max_price_age_sec, "StaleOraclePrice")
    _require(
        price_within_confidence(oracle.price, oracle.conf, limits.max_price_error_bps),
        "OracleConfidenceTooWide",
    )
    return Prices.of(oracle.price, oracle.expo, oracle.ema)


# --- outputs (same fields as the Rust return structs) ------------------------------------------


@dataclass(frozen=True)
class OpenQuote(_FromDecoded):
    entry_price: int
    fee_usd: int
    fee_amount: int
    collateral_usd: int
    leverage_bps: int
    locked_amount: int
    liquidation_price: int
    #: Price impact included in ``entry_price`` (9 dp fraction of the price).
    price_impact: int


@dataclass(frozen=True)
class CloseQuote(_FromDecoded):
    exit_price: int
    size_usd: int
    collateral_usd: int
    collateral_amount: int
    locked_amount: int
    profit_usd: int
    loss_usd: int
    close_fee_usd: int
    borrow_fee_usd: int
    payout_usd: int
    payout_amount: int
    bad_debt_usd: int
    #: Price impact included in ``exit_price`` (9 dp).
    price_impact: int
    funding_paid_usd: int
    funding_received_usd: int
    #: Flat fee of an automatic close (0 for a trader's own close).
    auto_close_fee_usd: int


@dataclass(frozen=True)
class PositionPnl(_FromDecoded):
    profit_usd: int
    loss_usd: int
    borrow_fee_usd: int
    close_fee_usd: int
    exit_price: int
    funding_paid_usd: int
    funding_received_usd: int


@dataclass(frozen=True)
class AddLiquidityQuote(_FromDecoded):
    lp_amount: int
    fee_amount: int
    deposit_usd: int
    aum_usd: int
    #: LP fee rate applied (bps), see :func:`custody_liquidity_fee_bps`.
    fee_bps: int


@dataclass(frozen=True)
class RemoveLiquidityQuote(_FromDecoded):
    amount_out: int
    fee_amount: int
    withdraw_usd: int
    aum_usd: int
    fee_bps: int


@dataclass(frozen=True)
class SwapQuote(_FromDecoded):
    amount_out: int
    fee_amount: int
    value_usd: int


@dataclass(frozen=True)
class AumView(_FromDecoded):
    spot_usd: int
    high_usd: int
    low_usd: int
    lp_supply: int
    lp_price_usd: int


@dataclass(frozen=True)
class OraclePriceView(_FromDecoded):
    price: int
    exponent: int
    ema_price: int
    price_usd_e9: int


# --- custody bookkeeping (state/custody.rs) ----------------------------------------------------


def custody_utilization(custody: CustodyState) -> int:
    """``Custody::utilization``: ``utilization_ceil(locked, owned)``."""
    return utilization_ceil(custody.assets.locked, custody.assets.owned)


def custody_hourly_borrow_rate(custody: CustodyState) -> int:
    """``Custody::hourly_borrow_rate`` at the custody's current utilization."""
    p = custody.borrow_rate
    return hourly_borrow_rate(
        custody_utilization(custody), p.base_rate, p.slope1, p.slope2, p.optimal_utilization
    )


def accrue_borrow(custody: CustodyState, now: int) -> CustodyState:
    """``Custody::accrue_borrow(now)``, returning the updated custody.

    The first accrual after ``last_update == 0`` only starts the clock; a ``now`` at or before
    ``last_update`` adds nothing; ``current_rate`` is refreshed either way.
    """
    check_i64(now)
    rate = custody_hourly_borrow_rate(custody)
    state = custody.borrow_state
    index, last_update = state.cumulative_interest, state.last_update
    if last_update != 0 and now > last_update:
        index = accrue_index(index, rate, now - last_update)
    if now > last_update:
        last_update = now
    new_state = BorrowRateState(
        current_rate=rate, cumulative_interest=index, last_update=last_update
    )
    return dataclasses.replace(custody, borrow_state=new_state)


def available(custody: CustodyState) -> int:
    """``Custody::available``: tokens neither locked nor owed (``owned - locked``)."""
    return _checked_sub(custody.assets.owned, custody.assets.locked)


def collect_fee(custody: CustodyState, fee_amount: int) -> CustodyState:
    """``Custody::collect_fee``: LP share to ``owned``, protocol share to ``protocol_fees``."""
    split = split_fee(fee_amount, custody.fees.protocol_share_bps)
    assets = dataclasses.replace(
        custody.assets,
        owned=_checked_add(custody.assets.owned, split.lp_share),
        protocol_fees=_checked_add(custody.assets.protocol_fees, split.protocol_share),
    )
    return dataclasses.replace(custody, assets=assets)


def book_value_usd(totals: PositionTotals, price_9dp: int) -> int:
    """``book_value_usd``: ``floor(size_over_entry * price / 1e9)``, the book's value at a price."""
    return to_u64(mul_div_floor(totals.size_over_entry, check_u64(price_9dp), RATE_ONE))


def size_over_entry(size_usd: int, entry_price_9dp: int) -> int:
    """``size_over_entry``: ``floor(size * 1e9 / entry)``, what ``PositionTotals`` sums."""
    return mul_div_floor(check_u64(size_usd), RATE_ONE, check_u64(entry_price_9dp))


def settle_close(
    custody: CustodyState,
    collateral_amount: int,
    locked_amount: int,
    paid_out: int,
    fee_amount: int,
) -> CustodyState:
    """``Custody::settle_close`` on the collateral custody, returning the updated custody.

    The released collateral minus what was paid out stays with the pool (``kept``, negative
    when a profit is paid from the LPs' tokens); the protocol's share of the fee is taken out of
    what is collected (the whole fee when a profit was paid, else at most ``kept``), and never
    more than what stays unlocked after the close.
    """
    for value in (collateral_amount, locked_amount, paid_out, fee_amount):
        check_u64(value)
    assets = custody.assets
    collateral = _checked_sub(assets.collateral, collateral_amount)
    locked = _checked_sub(assets.locked, locked_amount)
    kept = collateral_amount - paid_out
    collected = min(fee_amount, kept) if kept >= 0 else fee_amount
    unlocked_after = max(0, assets.owned + kept - locked)
    share = split_fee(collected, custody.fees.protocol_share_bps).protocol_share
    protocol = min(share, unlocked_after)
    protocol_fees = _checked_add(assets.protocol_fees, protocol)
    owned = assets.owned + kept - protocol
    _require(0 <= owned <= U64_MAX, "InsufficientLiquidity")
    _require(locked <= owned, "InsufficientLiquidity")
    new_assets = Assets(
        owned=owned, locked=locked, collateral=collateral, protocol_fees=protocol_fees
    )
    return dataclasses.replace(custody, assets=new_assets)


def remove_from_book(
    custody: CustodyState,
    side: Side,
    entry_price: int,
    old_size_usd: int,
    new_size_usd: int,
    collateral_usd: int,
    closes_position: bool,
) -> CustodyState:
    """``Custody::remove_from_book`` on the traded custody: takes a closed slice out of its
    side's totals (saturating, as the program does)."""
    removed_units = _checked_sub(
        size_over_entry(old_size_usd, entry_price), size_over_entry(new_size_usd, entry_price)
    )
    # `old - new` is a plain u64 subtraction in Rust (overflow-checks on: a panic).
    if new_size_usd > old_size_usd:
        raise ValueError("new_size_usd exceeds old_size_usd (the program would panic)")
    totals = custody.totals(side)
    new_totals = PositionTotals(
        open_positions=max(totals.open_positions - 1, 0)
        if closes_position
        else totals.open_positions,
        size_usd=max(totals.size_usd - (old_size_usd - new_size_usd), 0),
        collateral_usd=max(totals.collateral_usd - check_u64(collateral_usd), 0),
        size_over_entry=max(totals.size_over_entry - removed_units, 0),
    )
    return custody.with_totals(side, new_totals)


def custody_prices(custody: CustodyState, oracle_prices: Prices) -> Prices:
    """``Custody::prices`` after the oracle read: a payoff market's prices are ``payoff(P)`` of
    the oracle's (9-dp), a token custody's are the oracle's unchanged."""
    if not custody.is_synthetic:
        return oracle_prices
    payoff = custody.payoff
    return Prices(
        spot=payoff_price(payoff.kind, payoff.scale, oracle_prices.spot),
        ema=payoff_price(payoff.kind, payoff.scale, oracle_prices.ema),
    )


def read_custody_prices(custody: CustodyState, oracle: CustomOracleState, now: int) -> Prices:
    """``Custody::prices`` for a custom oracle: :func:`read_custom_oracle` with the custody's
    limits, then the payoff transform (:func:`custody_prices`)."""
    return custody_prices(custody, read_custom_oracle(oracle, custody.oracle, now))


def require_tokens(custody: CustodyState) -> None:
    """``Custody::require_tokens``: no LP deposits, withdrawals or swaps on a payoff market."""
    _require(not custody.is_synthetic, "SyntheticCustody")


def accrue_funding(custody: CustodyState, now: int, pool_aum_usd: int) -> CustodyState:
    """``Custody::accrue_funding(now, pool_aum_usd)``, returning the updated custody.

    Every instruction that changes open interest accrues first, so the rate from the current
    open interest and ``pool_aum_usd`` (the ``Pool`` account's stored AUM) is the one that held
    over the whole elapsed period; it is also stored as ``current_rate``. The first accrual
    (``last_update == 0``) only starts the clock; idempotent within one timestamp.
    """
    check_i64(now)
    rate = funding_rate(
        custody.longs.size_usd,
        custody.shorts.size_usd,
        pool_aum_usd,
        custody.funding.funding_c,
        custody.funding.max_hourly_rate,
    )
    state = custody.funding_state
    long_index, short_index = state.long_index, state.short_index
    if state.last_update != 0 and now > state.last_update:
        long_index, short_index = math_accrue_funding(
            long_index,
            short_index,
            rate,
            now - state.last_update,
            custody.longs.size_usd,
            custody.shorts.size_usd,
        )
    new_state = FundingState(
        current_rate=rate,
        long_index=long_index,
        short_index=short_index,
        last_update=max(now, state.last_update),
    )
    return dataclasses.replace(custody, funding_state=new_state)


def refresh_funding_rate(custody: CustodyState, pool_aum_usd: int) -> CustodyState:
    """``Custody::refresh_funding_rate``: the displayed rate from the open interest after a
    change to the book."""
    f = custody.funding
    rate = funding_rate(
        custody.longs.size_usd,
        custody.shorts.size_usd,
        pool_aum_usd,
        f.funding_c,
        f.max_hourly_rate,
    )
    return dataclasses.replace(
        custody, funding_state=dataclasses.replace(custody.funding_state, current_rate=rate)
    )


def refresh_borrow_rate(custody: CustodyState) -> CustodyState:
    """``Custody::refresh_borrow_rate``: the displayed rate from the utilization after a
    change."""
    rate = custody_hourly_borrow_rate(custody)
    state = dataclasses.replace(custody.borrow_state, current_rate=rate)
    return dataclasses.replace(custody, borrow_state=state)


def funding_index(custody: CustodyState, side: Side) -> int:
    """``Custody::funding_index``: the side's cumulative funding index."""
    state = custody.funding_state
    return state.long_index if side is Side.LONG else state.short_index


def insurance_room(custody: CustodyState, prices: Prices) -> int:
    """``Custody::insurance_room``: tokens (at the high price) left under the fund's cap."""
    value = token_to_usd_ceil(custody.insurance.balance, custody.decimals, prices.max())
    room_usd = max(custody.liquidation.insurance_fund_cap_usd - value, 0)
    return usd_to_token_floor_saturating(room_usd, custody.decimals, prices.max())


def add_to_insurance(custody: CustodyState, amount: int) -> CustodyState:
    """``Custody::add_to_insurance``: ``amount`` tokens into the fund."""
    fund = custody.insurance
    new_fund = dataclasses.replace(
        fund,
        balance=_checked_add(fund.balance, check_u64(amount)),
        total_inflow=_checked_add(fund.total_inflow, amount),
    )
    return dataclasses.replace(custody, insurance=new_fund)


def cover_bad_debt(
    custody: CustodyState, bad_debt_usd: int, prices: Prices
) -> tuple[CustodyState, int]:
    """``Custody::cover_bad_debt``: up to ``bad_debt_usd`` worth of fund tokens (at the low
    price, rounded up) move into ``owned`` before the LPs bear the rest. Returns the updated
    custody and the tokens moved."""
    if check_u64(bad_debt_usd) == 0:
        return custody, 0
    wanted = usd_to_token_ceil_saturating(bad_debt_usd, custody.decimals, prices.min())
    fund = custody.insurance
    amount = min(wanted, fund.balance)
    if amount == wanted:
        covered_usd = bad_debt_usd
    else:
        covered_usd = min(token_to_usd_floor(amount, custody.decimals, prices.min()), bad_debt_usd)
    new_fund = InsuranceFund(
        balance=fund.balance - amount,
        total_outflow=_checked_add(fund.total_outflow, amount),
        total_inflow=fund.total_inflow,
        # saturating_add in the program
        bad_debt_covered_usd=min(fund.bad_debt_covered_usd + covered_usd, U64_MAX),
        bad_debt_uncovered_usd=min(
            fund.bad_debt_uncovered_usd + bad_debt_usd - covered_usd, U64_MAX
        ),
    )
    assets = dataclasses.replace(custody.assets, owned=_checked_add(custody.assets.owned, amount))
    return dataclasses.replace(custody, insurance=new_fund, assets=assets), amount


def custody_liquidity_fee_bps(
    custody: CustodyState, value_usd: int, aum_usd: int, delta_usd: int, adding: bool
) -> int:
    """``Custody::liquidity_fee_bps``: the LP fee for moving ``delta_usd`` into (``adding``) or
    out of a custody whose owned tokens are worth ``value_usd`` in a pool worth ``aum_usd``."""
    before = ratio_bps(value_usd, aum_usd)
    if adding:
        after = ratio_bps(_checked_add(value_usd, delta_usd), _checked_add(aum_usd, delta_usd))
    else:
        after = ratio_bps(max(value_usd - delta_usd, 0), max(aum_usd - delta_usd, 0))
    f = custody.fees
    return math_liquidity_fee_bps(
        f.liquidity_min_fee_bps,
        f.liquidity_max_fee_bps,
        f.liquidity_fee_k_bps,
        custody.ratios.target_bps,
        before,
        after,
    )


# --- positions (state/position.rs) -------------------------------------------------------------


def trade_price(side: Side, prices: Prices, opening: bool) -> OraclePrice:
    """Longs buy at the higher of spot/EMA and sell at the lower; shorts the reverse."""
    buys_high = (side is Side.LONG) == opening
    return prices.max() if buys_high else prices.min()


def _pool_aum(custody: CustodyState, side: Side, pool_aum_usd: int | None) -> int:
    """The pool AUM a price-impact curve needs. ``None`` is accepted only where the AUM cannot
    change the result (no curve on this side), so an old call site can never be silently
    wrong for a custody with slippage."""
    if pool_aum_usd is not None:
        return check_u64(pool_aum_usd)
    if custody.slippage.for_side(side) != (0, 0):
        raise ValueError("pool_aum_usd is required: the custody has a price-impact curve")
    return 0


def execution_price(
    side: Side,
    custody: CustodyState,
    prices: Prices,
    opening: bool,
    size_usd: int,
    pool_aum_usd: int,
) -> tuple[int, int]:
    """``execution_price``: the pool-favourable 9-dp oracle price moved against the trader by
    the side's impact curve. Returns (price, impact)."""
    oracle = trade_price(side, prices, opening)
    base = entry_price_9dp(side, oracle) if opening else exit_price_9dp(side, oracle)
    a_bps, b_bps = custody.slippage.for_side(side)
    impact = price_impact(size_usd, pool_aum_usd, a_bps, b_bps)
    # Buying (a long's open, a short's close) moves the price up; selling moves it down.
    buying = (side is Side.LONG) == opening
    return apply_impact(base, impact, buying), impact


def trading_fee_usd(custody: CustodyState, size_usd: int, fee_bps: int) -> int:
    """``trading_fee_usd``: the fee on ``size_usd`` at ``fee_bps``, at least the minimum fee."""
    return fee_usd_with_minimum(size_usd, fee_bps, custody.fees.min_fee_usd)


def locked_usd(side: Side, custody: CustodyState, size_usd: int, collateral_usd: int) -> int:
    """``locked_usd``: what the pool may pay beyond the trader's collateral, locked in the
    collateral custody: a long's borrowed part (paid in the traded token), a short's full size,
    a payoff market's ``max_profit_bps`` of size."""
    if custody.is_synthetic:
        return max_profit_usd(size_usd, custody.payoff.max_profit_bps)
    return max(size_usd - collateral_usd, 0) if side is Side.LONG else size_usd


def maintenance_margin_bps(custody: CustodyState) -> int:
    """Maintenance margin implied by the custody's ``max_leverage`` (250x -> 40 bps)."""
    return maintenance_margin_bps_for_max_leverage(custody.pricing.max_leverage)


def quote_open(
    side: Side,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    collateral_amount: int,
    size_usd: int,
    pool_aum_usd: int | None = None,
) -> OpenQuote:
    """``Position::quote_open``: entry price (with price impact against ``pool_aum_usd``, the
    ``Pool`` account's stored AUM), open fee, net collateral, leverage, tokens locked and the
    liquidation price of a new position. ``pool_aum_usd`` may be left out only for a custody
    without an impact curve on this side."""
    check_u64(collateral_amount)
    check_u64(size_usd)
    _require(collateral_amount > 0 and size_usd > 0, "ZeroAmount")
    _require(size_usd >= custody.pricing.min_trade_size_usd, "TradeTooSmall")
    aum = _pool_aum(custody, side, pool_aum_usd)
    decimals = collateral_custody.decimals
    entry_price, impact = execution_price(side, custody, prices, True, size_usd, aum)
    open_fee_usd = trading_fee_usd(custody, size_usd, custody.fees.open_position_bps)
    # Collateral valued low, fee tokens rounded up: both in the pool's favour.
    gross_collateral_usd = token_to_usd_floor(collateral_amount, decimals, collateral_prices.min())
    fee_amount = usd_to_token_ceil(open_fee_usd, decimals, collateral_prices.min())
    _require(
        fee_amount < collateral_amount and open_fee_usd < gross_collateral_usd,
        "InsufficientCollateral",
    )
    collateral_usd = gross_collateral_usd - open_fee_usd
    leverage = leverage_bps(size_usd, collateral_usd)
    borrowed_usd = locked_usd(side, custody, size_usd, collateral_usd)
    locked_amount = usd_to_token_ceil(borrowed_usd, decimals, collateral_prices.min())
    close_fee = trading_fee_usd(custody, size_usd, custody.fees.close_position_bps)
    liquidation = liquidation_price(
        side, entry_price, size_usd, collateral_usd, close_fee, maintenance_margin_bps(custody)
    )
    return OpenQuote(
        entry_price=entry_price,
        fee_usd=open_fee_usd,
        fee_amount=fee_amount,
        collateral_usd=collateral_usd,
        leverage_bps=leverage,
        locked_amount=locked_amount,
        liquidation_price=liquidation,
        price_impact=impact,
    )


def position_borrow_fee_usd(position: PositionState, collateral_custody: CustodyState) -> int:
    """``Position::borrow_fee_usd``: accrued since the snapshot (at the custody's current index;
    accrue it first) plus any unpaid borrow fee."""
    accrued = math_borrow_fee_usd(
        position.size_usd,
        collateral_custody.borrow_state.cumulative_interest,
        position.borrow_index_snapshot,
    )
    return _checked_add(accrued, position.unpaid_borrow_fee_usd)


def position_funding_usd(position: PositionState, custody: CustodyState) -> int:
    """``Position::funding_usd``: funding owed at the traded custody's current index (accrue it
    first, :func:`accrue_funding`) plus any unpaid funding; negative = owed to the position."""
    accrued = math_funding_usd(
        position.size_usd, funding_index(custody, position.side), position.funding_index_snapshot
    )
    total = accrued + check_i64(position.unpaid_funding_usd)
    _require(I64_MIN <= total <= I64_MAX, "MathOverflow")
    return total


def _slice_funding(funding_owed: int, close_bps: int) -> tuple[int, int]:
    """(paid, received) by a slice: its share of what is paid rounded up, of what is received
    rounded down."""
    paid, received = funding_parts(funding_owed)
    if close_bps == BPS_DENOMINATOR:
        return paid, received
    return split_bps_ceil(paid, close_bps).closed, split_bps_floor(received, close_bps).closed


def quote_close(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    close_bps: int,
    pool_aum_usd: int | None = None,
    auto_close_fee_usd: int = 0,
) -> CloseQuote:
    """``Position::quote_close``: settle ``close_bps`` of the position at the current price.

    The exit price carries the impact of the slice's size against ``pool_aum_usd``. The slice
    pays the close fee (at least the minimum fee), ``auto_close_fee_usd`` (liquidations) and its
    share of the borrow fee and of the funding owed (rounded up); it receives its share of the
    funding owed to it (rounded down). The payout is converted to tokens at the high collateral
    price, rounded down, and capped at the slice's collateral plus the tokens locked for it.
    """
    _require(0 < check_u64(close_bps) <= BPS_DENOMINATOR, "InvalidCloseSize")
    _require(split_bps_floor(position.size_usd, close_bps).closed > 0, "InvalidCloseSize")
    full = close_bps == BPS_DENOMINATOR
    decimals = collateral_custody.decimals
    part = partial_close(position.size_usd, position.collateral_usd, 0, close_bps)
    collateral_amount = split_bps_floor(position.collateral_amount, close_bps).closed
    if full:
        locked_amount = position.locked_amount
    else:
        locked_amount = split_bps_floor(position.locked_amount, close_bps).closed
    aum = _pool_aum(custody, position.side, pool_aum_usd)
    exit_price, impact = execution_price(
        position.side, custody, prices, False, part.size.closed, aum
    )
    close_fee_usd = trading_fee_usd(custody, part.size.closed, custody.fees.close_position_bps)
    borrow_owed = position_borrow_fee_usd(position, collateral_custody)
    borrow_fee = borrow_owed if full else split_bps_ceil(borrow_owed, close_bps).closed
    funding_paid, funding_received = _slice_funding(
        position_funding_usd(position, custody), close_bps
    )
    fees = close_fee_usd
    for fee in (borrow_fee, check_u64(auto_close_fee_usd), funding_paid):
        fees = _checked_add(fees, fee)
    credit_usd = _checked_add(part.collateral.closed, funding_received)
    amounts = close_amounts(
        position.side, part.size.closed, credit_usd, position.price, exit_price, fees
    )
    profit, payout = amounts.profit_usd, amounts.payout_usd
    uncapped_amount = usd_to_token_floor_saturating(payout, decimals, collateral_prices.max())
    payout_amount = min(uncapped_amount, _checked_add(collateral_amount, locked_amount))
    if payout_amount < uncapped_amount:
        payout = token_to_usd_floor(payout_amount, decimals, collateral_prices.max())
    return CloseQuote(
        exit_price=exit_price,
        size_usd=part.size.closed,
        collateral_usd=part.collateral.closed,
        collateral_amount=collateral_amount,
        locked_amount=locked_amount,
        profit_usd=profit,
        loss_usd=amounts.loss_usd,
        close_fee_usd=close_fee_usd,
        borrow_fee_usd=borrow_fee,
        payout_usd=payout,
        payout_amount=payout_amount,
        bad_debt_usd=amounts.bad_debt_usd,
        price_impact=impact,
        funding_paid_usd=funding_paid,
        funding_received_usd=funding_received,
        auto_close_fee_usd=auto_close_fee_usd,
    )


def funding_after(position: PositionState, custody: CustodyState, quote: CloseQuote) -> int:
    """``Position::funding_after``: funding still owed (signed) once the slice of ``quote``
    has settled its part."""
    owed = position_funding_usd(position, custody) - quote.funding_paid_usd
    owed += quote.funding_received_usd
    _require(I64_MIN <= owed <= I64_MAX, "MathOverflow")
    return owed


def full_close_margin(position: PositionState, quote: CloseQuote) -> int:
    """Margin as a full close settles it (without the auto-close fee): collateral + funding
    received + profit - loss - close and borrow fees - funding paid."""
    fees = _checked_add(
        _checked_add(quote.close_fee_usd, quote.borrow_fee_usd), quote.funding_paid_usd
    )
    credit = _checked_add(position.collateral_usd, quote.funding_received_usd)
    return margin_usd(credit, quote.profit_usd, quote.loss_usd, fees)


def position_liquidation_step(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    pool_aum_usd: int | None = None,
) -> int | None:
    """``Position::liquidation_step``: the ladder step that applies now, ``None`` if healthy."""
    q = quote_close(
        position,
        custody,
        prices,
        collateral_custody,
        collateral_prices,
        BPS_DENOMINATOR,
        pool_aum_usd,
    )
    return math_liquidation_step(
        full_close_margin(position, q),
        position.size_usd,
        maintenance_margin_bps(custody),
        custody.liquidation.ladder(),
    )


def position_is_liquidatable(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    pool_aum_usd: int | None = None,
) -> bool:
    """``Position::is_liquidatable``: the first liquidation step (the maintenance margin)
    applies."""
    step = position_liquidation_step(
        position, custody, prices, collateral_custody, collateral_prices, pool_aum_usd
    )
    return step is not None


def close_fee_amount(quote: CloseQuote, collateral_custody: CustodyState, prices: Prices) -> int:
    """The ``fee_amount`` ``close_position``/``liquidate`` pass to :func:`settle_close`: close,
    borrow and auto-close fees (0 outside liquidations) in collateral tokens at the high price,
    rounded down."""
    fees = _checked_add(
        _checked_add(quote.close_fee_usd, quote.borrow_fee_usd), quote.auto_close_fee_usd
    )
    return usd_to_token_floor_saturating(fees, collateral_custody.decimals, prices.max())


def close_position_remainder(
    position: PositionState,
    quote: CloseQuote,
    collateral_custody: CustodyState,
    custody: CustodyState | None = None,
) -> PositionState:
    """``close_position``'s update of a *partially* closed position (a full close closes the
    account instead), from the :func:`quote_close` of that close.

    ``collateral_custody`` and ``custody`` (the traded custody; ``None`` = the same account, as
    for a long on a token) are those the quote was made with (accrued to ``now``). The slice's
    size, collateral and locked tokens come out of the position; the borrow fee and funding
    owed but not settled with the slice stay in ``unpaid_*`` and the snapshots move to the
    custodies' indices. (The instruction first refuses a partial close of a liquidatable
    position, :func:`position_is_liquidatable`, and one that leaves less than the minimum trade
    size.)
    """
    if quote.size_usd >= position.size_usd:
        raise ValueError("a full close leaves no position (close_position closes the account)")
    traded = collateral_custody if custody is None else custody
    borrow_still_owed = _checked_sub(
        position_borrow_fee_usd(position, collateral_custody), quote.borrow_fee_usd
    )
    return dataclasses.replace(
        position,
        size_usd=position.size_usd - quote.size_usd,
        collateral_usd=_checked_sub(position.collateral_usd, quote.collateral_usd),
        collateral_amount=_checked_sub(position.collateral_amount, quote.collateral_amount),
        locked_amount=_checked_sub(position.locked_amount, quote.locked_amount),
        borrow_index_snapshot=collateral_custody.borrow_state.cumulative_interest,
        unpaid_borrow_fee_usd=borrow_still_owed,
        funding_index_snapshot=funding_index(traded, position.side),
        unpaid_funding_usd=funding_after(position, traded, quote),
    )


def load_position_custodies(
    custody: CustodyState, collateral_custody: CustodyState, now: int, pool_aum_usd: int
) -> tuple[CustodyState, CustodyState]:
    """``load_position_custodies`` (and ``PositionView::load``): the collateral custody's borrow
    and the traded custody's funding accrued to ``now``. When both are one account (same
    ``key``) the two returned states are the same object. Returns (custody, collateral)."""
    accrued = accrue_borrow(collateral_custody, now)
    if custody.key is not None and custody.key == collateral_custody.key:
        accrued = accrue_funding(accrued, now, pool_aum_usd)
        return accrued, accrued
    return accrue_funding(custody, now, pool_aum_usd), accrued


@dataclass(frozen=True)
class ClosePositionResult:
    """Everything ``close_position`` settles: the quote, the fee tokens booked, the insurance
    tokens that covered bad debt, the custodies after the close (one object when they are the
    same account) and the remaining position (``None`` after a full close)."""

    quote: CloseQuote
    fee_amount: int
    covered_amount: int
    custody: CustodyState
    collateral_custody: CustodyState
    position: PositionState | None


def close_position(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    now: int,
    close_bps: int,
    pool_aum_usd: int,
    price_limit: int | None = None,
) -> ClosePositionResult:
    """``handle_close_position`` at cluster time ``now`` with the ``Pool`` account's stored AUM:
    the same checks in the same order (``price_limit`` None skips the price check), the
    settlement in the collateral custody, insurance cover of bad debt, the book update and the
    remaining position."""
    custody, collateral_custody = load_position_custodies(
        custody, collateral_custody, now, pool_aum_usd
    )
    same = custody is collateral_custody
    full = close_bps == BPS_DENOMINATOR
    inputs = (custody, prices, collateral_custody, collateral_prices)
    if not full:
        # A partial close must not let an under-margined position shed its worst part.
        _require(not position_is_liquidatable(position, *inputs, pool_aum_usd), "InvalidCloseSize")
    q = quote_close(position, *inputs, close_bps, pool_aum_usd, 0)
    _require(full or q.size_usd < position.size_usd, "InvalidCloseSize")
    remaining_size = position.size_usd - q.size_usd
    _require(full or remaining_size >= custody.pricing.min_trade_size_usd, "TradeTooSmall")
    # A partial close pays its own fees (no bad debt while the rest stays open).
    _require(full or q.bad_debt_usd == 0, "CloseTooSmall")
    if price_limit is not None:
        if position.side is Side.LONG:
            _require(q.exit_price >= price_limit, "PriceLimitExceeded")
        else:
            _require(q.exit_price <= price_limit, "PriceLimitExceeded")
    fee_amount = close_fee_amount(q, collateral_custody, collateral_prices)
    remainder = None if full else close_position_remainder(position, q, collateral_custody, custody)
    settled = settle_close(
        collateral_custody, q.collateral_amount, q.locked_amount, q.payout_amount, fee_amount
    )
    settled, covered = cover_bad_debt(settled, q.bad_debt_usd, collateral_prices)
    # The displayed rates follow the utilization and open interest after the close.
    settled = refresh_borrow_rate(settled)
    book = settled if same else custody
    book = remove_from_book(
        book,
        position.side,
        position.price,
        position.size_usd,
        remaining_size,
        q.collateral_usd,
        full,
    )
    book = refresh_funding_rate(book, pool_aum_usd)
    return ClosePositionResult(
        quote=q,
        fee_amount=fee_amount,
        covered_amount=covered,
        custody=book,
        collateral_custody=book if same else settled,
        position=remainder,
    )


@dataclass(frozen=True)
class LiquidationAmounts:
    """What ``liquidate`` settles (collateral tokens unless named ``_usd``).

    The step's slice (``quote``) pays its payout as: ``reward_amount`` to the liquidator,
    ``insurance_amount`` into the insurance fund, ``protocol_amount`` to the protocol (together
    ``discount_amount``), and the rest to the owner (``owner_amount``, full close) or back into
    the position as collateral (``retained_amount`` worth ``retained_usd``, partial close).
    """

    step: int
    close_bps: int
    discount_bps: int
    quote: CloseQuote
    fee_amount: int
    discount_amount: int
    reward_amount: int
    insurance_amount: int
    protocol_amount: int
    owner_amount: int
    retained_amount: int
    retained_usd: int
    remaining_size_usd: int

    @property
    def full(self) -> bool:
        return self.close_bps == BPS_DENOMINATOR


def liquidation_amounts(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    pool_aum_usd: int,
) -> LiquidationAmounts:
    """``liquidate``'s amounts with custodies already accrued to the block's time (see
    :func:`load_position_custodies`): the ladder step (``NotLiquidatable`` if none), its slice
    quoted with the auto-close fee, the step's discount out of the payout (tokens at the high
    price, at most the payout) split between liquidator, insurance fund (up to its room under
    the cap) and protocol, and the rest for the owner or kept in the position."""
    inputs = (custody, prices, collateral_custody, collateral_prices)
    step = position_liquidation_step(position, *inputs, pool_aum_usd)
    _require(step is not None, "NotLiquidatable")
    assert step is not None
    ladder = custody.liquidation.ladder()
    close_bps = ladder[step].close_bps
    discount_bps = step_discount_bps(custody.fees.liquidation_reward_bps, step, len(ladder))
    # The flat auto-close fee is capped at what the slice has left (never into bad debt).
    slice_quote = quote_close(position, *inputs, close_bps, pool_aum_usd, 0)
    auto_close_fee = min(custody.liquidation.auto_close_fee_usd, slice_quote.payout_usd)
    q = (
        quote_close(position, *inputs, close_bps, pool_aum_usd, auto_close_fee)
        if auto_close_fee
        else slice_quote
    )
    decimals = collateral_custody.decimals
    fee_amount = close_fee_amount(q, collateral_custody, collateral_prices)
    discount_usd = fee_usd(q.size_usd, discount_bps)
    discount = min(
        usd_to_token_floor_saturating(discount_usd, decimals, collateral_prices.max()),
        q.payout_amount,
    )
    split = split_discount(
        discount,
        custody.liquidation.insurance_fund_fraction_bps,
        insurance_room(collateral_custody, collateral_prices),
    )
    remainder = q.payout_amount - discount
    full = close_bps == BPS_DENOMINATOR
    owner_amount, retained_amount = (remainder, 0) if full else (0, remainder)
    retained_usd = token_to_usd_floor(retained_amount, decimals, collateral_prices.min())
    return LiquidationAmounts(
        step=step,
        close_bps=close_bps,
        discount_bps=discount_bps,
        quote=q,
        fee_amount=fee_amount,
        discount_amount=discount,
        reward_amount=split.liquidator,
        insurance_amount=split.insurance,
        protocol_amount=split.protocol,
        owner_amount=owner_amount,
        retained_amount=retained_amount,
        retained_usd=retained_usd,
        remaining_size_usd=position.size_usd - q.size_usd,
    )


@dataclass(frozen=True)
class LiquidationResult:
    """``liquidate``'s amounts, the insurance tokens that covered bad debt, the custodies after
    it (one object when they are the same account) and what is left of the position
    (``None`` after a full liquidation)."""

    amounts: LiquidationAmounts
    covered_amount: int
    custody: CustodyState
    collateral_custody: CustodyState
    position: PositionState | None


def _liquidated_remainder(
    position: PositionState,
    a: LiquidationAmounts,
    borrow_still_owed: int,
    funding_still_owed: int,
    custody: CustodyState,
    collateral_custody: CustodyState,
) -> PositionState:
    q = a.quote
    collateral_usd = _checked_add(
        _checked_sub(position.collateral_usd, q.collateral_usd), a.retained_usd
    )
    collateral_amount = _checked_add(
        _checked_sub(position.collateral_amount, q.collateral_amount), a.retained_amount
    )
    return dataclasses.replace(
        position,
        size_usd=a.remaining_size_usd,
        collateral_usd=collateral_usd,
        collateral_amount=collateral_amount,
        locked_amount=_checked_sub(position.locked_amount, q.locked_amount),
        borrow_index_snapshot=collateral_custody.borrow_state.cumulative_interest,
        unpaid_borrow_fee_usd=borrow_still_owed,
        funding_index_snapshot=funding_index(custody, position.side),
        unpaid_funding_usd=funding_still_owed,
    )


def liquidate(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    now: int,
    pool_aum_usd: int,
) -> LiquidationResult:
    """``handle_liquidate`` at cluster time ``now`` with the ``Pool`` account's stored AUM:
    accrual, :func:`liquidation_amounts`, the settlement in the collateral custody (insurance
    inflow, protocol share, retained collateral, bad debt covered by the fund), the book update
    and the remaining position."""
    custody, collateral_custody = load_position_custodies(
        custody, collateral_custody, now, pool_aum_usd
    )
    same = custody is collateral_custody
    a = liquidation_amounts(
        position, custody, prices, collateral_custody, collateral_prices, pool_aum_usd
    )
    q = a.quote
    borrow_still_owed = _checked_sub(
        position_borrow_fee_usd(position, collateral_custody), q.borrow_fee_usd
    )
    funding_still_owed = funding_after(position, custody, q)
    # settle_close treats the whole payout as leaving the vault; the parts that stay are
    # credited back to the insurance fund, the protocol and the position's collateral.
    cc = settle_close(
        collateral_custody, q.collateral_amount, q.locked_amount, q.payout_amount, a.fee_amount
    )
    cc = add_to_insurance(cc, a.insurance_amount)
    cc_assets = dataclasses.replace(
        cc.assets,
        protocol_fees=_checked_add(cc.assets.protocol_fees, a.protocol_amount),
        collateral=_checked_add(cc.assets.collateral, a.retained_amount),
    )
    cc, covered = cover_bad_debt(
        dataclasses.replace(cc, assets=cc_assets), q.bad_debt_usd, collateral_prices
    )
    cc = refresh_borrow_rate(cc)
    book = cc if same else custody
    book = remove_from_book(
        book,
        position.side,
        position.price,
        position.size_usd,
        a.remaining_size_usd,
        q.collateral_usd,
        a.full,
    )
    totals = book.totals(position.side)
    totals = dataclasses.replace(
        totals, collateral_usd=_checked_add(totals.collateral_usd, a.retained_usd)
    )
    book = refresh_funding_rate(book.with_totals(position.side, totals), pool_aum_usd)
    cc = book if same else cc
    remainder = None
    if not a.full:
        remainder = _liquidated_remainder(
            position, a, borrow_still_owed, funding_still_owed, book, cc
        )
    return LiquidationResult(
        amounts=a, covered_amount=covered, custody=book, collateral_custody=cc, position=remainder
    )


# --- pool value (state/pool.rs) ----------------------------------------------------------------


def aum_usd(custodies: Sequence[PricedCustody], valuation: Valuation) -> int:
    """``Pool::aum_usd``: owned tokens valued per ``valuation``, plus what open positions have
    lost (up to their side's collateral), minus what they have won (a payoff market's book at
    most its profit cap, :func:`book_profit_cap`); books valued at spot. The collateral tokens
    the pool holds count too (valued per ``valuation``), and the positions' collateral credit
    (``collateral_usd``, its USD value at entry) is owed."""
    assets = trader_profit = trader_loss = collateral_credit = 0
    for entry in custodies:
        c, prices = entry.custody, entry.prices
        value = custody_value_usd(c.assets.owned, c.decimals, prices.spot, prices.ema, valuation)
        collateral = custody_value_usd(
            c.assets.collateral, c.decimals, prices.spot, prices.ema, valuation
        )
        assets = _checked_add(assets, value + collateral, U128_MAX)
        credit = c.longs.collateral_usd + c.shorts.collateral_usd
        collateral_credit = _checked_add(collateral_credit, credit, U128_MAX)
        price = prices.spot.to_price_9dp_floor()
        long_value = book_value_usd(c.longs, price)
        if long_value >= c.longs.size_usd:
            won = min(long_value - c.longs.size_usd, book_profit_cap(c, c.longs.size_usd))
            trader_profit = _checked_add(trader_profit, won, U128_MAX)
        else:
            loss = min(c.longs.size_usd - long_value, c.longs.collateral_usd)
            trader_loss = _checked_add(trader_loss, loss, U128_MAX)
        short_value = book_value_usd(c.shorts, price)
        if short_value <= c.shorts.size_usd:
            won = min(c.shorts.size_usd - short_value, book_profit_cap(c, c.shorts.size_usd))
            trader_profit = _checked_add(trader_profit, won, U128_MAX)
        else:
            loss = min(short_value - c.shorts.size_usd, c.shorts.collateral_usd)
            trader_loss = _checked_add(trader_loss, loss, U128_MAX)
    owed = _checked_add(trader_profit, collateral_credit, U128_MAX)
    aum = max(_checked_add(assets, trader_loss, U128_MAX) - owed, 0)
    return to_u64(aum)


def book_profit_cap(custody: CustodyState, size_usd: int) -> int:
    """``book_profit_cap`` (state/pool.rs): the most a book of ``size_usd`` can win, a payoff
    market's profit cap; no cap (u64::MAX) for a token custody."""
    if custody.is_synthetic:
        return max_profit_usd(size_usd, custody.payoff.max_profit_bps)
    return U64_MAX


def _pool_entry(custodies: Sequence[PricedCustody], custody_key: object) -> PricedCustody:
    """``pool.custody_index(key)`` into the loaded custodies (``CustodyNotInPool`` if absent)."""
    for entry in custodies:
        if entry.custody.key == custody_key:
            return entry
    raise QuoteError("CustodyNotInPool")


# --- liquidity and swaps (instructions/*.rs) ---------------------------------------------------


def _check_max_ratio(entry: PricedCustody, aum: int, deposit_usd: int) -> None:
    """A deposit may not push a custody above its max share (moving back is allowed)."""
    if aum == 0:
        return
    c, prices = entry.custody, entry.prices
    value = custody_value_usd(c.assets.owned, c.decimals, prices.spot, prices.ema, Valuation.HIGH)
    old_ratio = mul_div_floor_u64(value, BPS_DENOMINATOR, aum)
    new_value = _checked_add(value, deposit_usd)
    new_aum = _checked_add(aum, deposit_usd)
    new_ratio = mul_div_floor_u64(new_value, BPS_DENOMINATOR, new_aum)
    _require(new_ratio <= c.ratios.max_bps or new_ratio <= old_ratio, "TokenRatioOutOfBounds")


def quote_add_liquidity(
    custodies: Sequence[PricedCustody], custody_key: object, lp_supply: int, amount_in: int
) -> AddLiquidityQuote:
    """``quote_add_liquidity``: LP minted for depositing ``amount_in`` of the custody with
    ``custody_key``. ``custodies`` is every custody of the pool, in pool order."""
    check_u64(amount_in)
    check_u64(lp_supply)
    _require(amount_in > 0, "ZeroAmount")
    entry = _pool_entry(custodies, custody_key)
    c, prices = entry.custody, entry.prices
    require_tokens(c)
    gross_usd = custody_value_usd(amount_in, c.decimals, prices.spot, prices.ema, Valuation.LOW)
    _require(gross_usd >= c.pricing.min_liquidity_deposit_usd, "DepositTooSmall")
    aum = aum_usd(custodies, Valuation.HIGH)
    value = custody_value_usd(c.assets.owned, c.decimals, prices.spot, prices.ema, Valuation.HIGH)
    fee_bps = custody_liquidity_fee_bps(c, value, aum, gross_usd, adding=True)
    fee_amount = fee_tokens(amount_in, fee_bps)
    net = _checked_sub(amount_in, fee_amount)
    # Deposit valued low, pool valued high: never mints more than the deposit is worth.
    deposit_usd = custody_value_usd(net, c.decimals, prices.spot, prices.ema, Valuation.LOW)
    # The first deposit pays for the locked LP: it must be worth more.
    _require(lp_supply > 0 or deposit_usd > LOCKED_LP_SUPPLY, "DepositTooSmall")
    _require(lp_supply == 0 or aum > 0, "EmptyPool")
    # The fee stays in the pool for the other LPs: the new tokens are priced against the pool
    # including it (valued high).
    fee_usd = custody_value_usd(fee_amount, c.decimals, prices.spot, prices.ema, Valuation.HIGH)
    lp_amount = lp_to_mint_after_fee(deposit_usd, fee_usd, aum, lp_supply)
    _require(lp_amount > 0, "ZeroAmount")
    _check_max_ratio(entry, aum, deposit_usd)
    return AddLiquidityQuote(
        lp_amount=lp_amount,
        fee_amount=fee_amount,
        deposit_usd=deposit_usd,
        aum_usd=aum,
        fee_bps=fee_bps,
    )


def _check_min_ratio(entry: PricedCustody, aum: int, withdraw_usd: int) -> None:
    """A withdrawal may not push a custody below its min share (unless it moves toward it)."""
    c, prices = entry.custody, entry.prices
    value = custody_value_usd(c.assets.owned, c.decimals, prices.spot, prices.ema, Valuation.LOW)
    old_ratio = mul_div_floor_u64(value, BPS_DENOMINATOR, aum)
    new_value = max(value - withdraw_usd, 0)
    new_aum = max(aum - withdraw_usd, 0)
    if new_aum == 0:
        return
    new_ratio = mul_div_floor_u64(new_value, BPS_DENOMINATOR, new_aum)
    _require(new_ratio >= c.ratios.min_bps or new_ratio >= old_ratio, "TokenRatioOutOfBounds")


def quote_remove_liquidity(
    custodies: Sequence[PricedCustody], custody_key: object, lp_supply: int, lp_amount_in: int
) -> RemoveLiquidityQuote:
    """``quote_remove_liquidity``: tokens of the custody with ``custody_key`` paid for burning
    ``lp_amount_in``. ``custodies`` is every custody of the pool, in pool order."""
    check_u64(lp_amount_in)
    check_u64(lp_supply)
    _require(lp_amount_in > 0, "ZeroAmount")
    entry = _pool_entry(custodies, custody_key)
    c, prices = entry.custody, entry.prices
    require_tokens(c)
    # Pool valued low, tokens paid at the high price: never pays more than the LP share.
    aum = aum_usd(custodies, Valuation.LOW)
    _require(aum > 0, "EmptyPool")
    withdraw_usd = usd_for_lp(lp_amount_in, aum, lp_supply)
    gross = usd_to_token_floor(withdraw_usd, c.decimals, prices.max())
    value = custody_value_usd(c.assets.owned, c.decimals, prices.spot, prices.ema, Valuation.LOW)
    fee_bps = custody_liquidity_fee_bps(c, value, aum, withdraw_usd, adding=False)
    fee_amount = fee_tokens(gross, fee_bps)
    amount_out = _checked_sub(gross, fee_amount)
    _require(amount_out > 0, "ZeroAmount")
    _require(gross <= available(c), "InsufficientLiquidity")
    _check_min_ratio(entry, aum, withdraw_usd)
    return RemoveLiquidityQuote(
        amount_out=amount_out,
        fee_amount=fee_amount,
        withdraw_usd=withdraw_usd,
        aum_usd=aum,
        fee_bps=fee_bps,
    )


def quote_swap(
    receiving: CustodyState,
    receiving_prices: Prices,
    dispensing: CustodyState,
    dispensing_prices: Prices,
    amount_in: int,
) -> SwapQuote:
    """``quote_swap``: ``amount_in`` of ``receiving``'s token for ``dispensing``'s, less the
    dispensing custody's swap fee (in valued low, out priced high)."""
    check_u64(amount_in)
    _require(amount_in > 0, "ZeroAmount")
    require_tokens(receiving)
    require_tokens(dispensing)
    value_usd = token_to_usd_floor(amount_in, receiving.decimals, receiving_prices.min())
    gross = usd_to_token_floor(value_usd, dispensing.decimals, dispensing_prices.max())
    fee_amount = fee_tokens(gross, dispensing.fees.swap_bps)
    amount_out = _checked_sub(gross, fee_amount)
    _require(amount_out > 0, "ZeroAmount")
    _require(gross <= available(dispensing), "InsufficientLiquidity")
    return SwapQuote(amount_out=amount_out, fee_amount=fee_amount, value_usd=value_usd)


# --- view instructions (instructions/views/*.rs), one function per view ------------------------


def check_side(side: Side, custody: CustodyState, collateral_custody: CustodyState) -> None:
    """``open_position::check_side``: a payoff market takes a (non-synthetic) stable on both
    sides; otherwise a long's collateral is the traded custody and a short's a stable custody
    against a non-stable one."""
    if custody.is_synthetic:
        _require(
            collateral_custody.is_stable and not collateral_custody.is_synthetic,
            "InvalidPayoffCollateral",
        )
        return
    if side is Side.LONG:
        _require(custody.key == collateral_custody.key, "InvalidLongCollateral")
    else:
        _require(collateral_custody.is_stable and not custody.is_stable, "InvalidShortCollateral")


def get_entry_price_and_fee(
    side: Side,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    collateral_amount: int,
    size_usd: int,
    pool_aum_usd: int | None = None,
) -> OpenQuote:
    """View ``get_entry_price_and_fee`` (``custody`` traded, collateral the ``other_custody``;
    ``pool_aum_usd`` the ``Pool`` account's ``aum_usd``)."""
    check_side(side, custody, collateral_custody)
    return quote_open(
        side,
        custody,
        prices,
        collateral_custody,
        collateral_prices,
        collateral_amount,
        size_usd,
        pool_aum_usd,
    )


def _position_view(
    custody: CustodyState, collateral_custody: CustodyState, now: int, pool_aum_usd: int | None
) -> tuple[CustodyState, CustodyState]:
    """``PositionView::load``: borrow and funding accrued to ``now`` on copies. The funding
    rate depends on the pool AUM, so ``None`` is accepted only with funding off."""
    if pool_aum_usd is None and custody.funding.funding_c != 0:
        raise ValueError("pool_aum_usd is required: the custody has funding on")
    return load_position_custodies(custody, collateral_custody, now, pool_aum_usd or 0)


def get_exit_price_and_fee(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    now: int,
    close_bps: int,
    pool_aum_usd: int | None = None,
) -> CloseQuote:
    """View ``get_exit_price_and_fee(close_bps)`` at cluster time ``now``."""
    custody, collateral_custody = _position_view(custody, collateral_custody, now, pool_aum_usd)
    return quote_close(
        position, custody, prices, collateral_custody, collateral_prices, close_bps, pool_aum_usd
    )


def get_pnl(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    now: int,
    pool_aum_usd: int | None = None,
) -> PositionPnl:
    """View ``get_pnl`` at cluster time ``now``: PnL, fees and funding of a full close."""
    q = get_exit_price_and_fee(
        position,
        custody,
        prices,
        collateral_custody,
        collateral_prices,
        now,
        BPS_DENOMINATOR,
        pool_aum_usd,
    )
    return PositionPnl(
        profit_usd=q.profit_usd,
        loss_usd=q.loss_usd,
        borrow_fee_usd=q.borrow_fee_usd,
        close_fee_usd=q.close_fee_usd,
        exit_price=q.exit_price,
        funding_paid_usd=q.funding_paid_usd,
        funding_received_usd=q.funding_received_usd,
    )


def get_liquidation_price(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    now: int,
    pool_aum_usd: int | None = None,
) -> int:
    """View ``get_liquidation_price`` at ``now``: 9-dp price with the fees and funding owed
    now (funding owed to the position counts as collateral)."""
    custody, collateral_custody = _position_view(custody, collateral_custody, now, pool_aum_usd)
    q = quote_close(
        position,
        custody,
        prices,
        collateral_custody,
        collateral_prices,
        BPS_DENOMINATOR,
        pool_aum_usd,
    )
    fees = _checked_add(_checked_add(q.close_fee_usd, q.borrow_fee_usd), q.funding_paid_usd)
    return liquidation_price(
        position.side,
        position.price,
        position.size_usd,
        _checked_add(position.collateral_usd, q.funding_received_usd),
        fees,
        maintenance_margin_bps(custody),
    )


def get_liquidation_state(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    now: int,
    pool_aum_usd: int | None = None,
) -> bool:
    """View ``get_liquidation_state`` at ``now``: whether ``liquidate`` would accept it."""
    custody, collateral_custody = _position_view(custody, collateral_custody, now, pool_aum_usd)
    return position_is_liquidatable(
        position, custody, prices, collateral_custody, collateral_prices, pool_aum_usd
    )


def get_assets_under_management(custodies: Sequence[PricedCustody], lp_supply: int) -> AumView:
    """View ``get_assets_under_management`` (custodies in pool order, LP mint supply)."""
    spot = aum_usd(custodies, Valuation.SPOT)
    return AumView(
        spot_usd=spot,
        high_usd=aum_usd(custodies, Valuation.HIGH),
        low_usd=aum_usd(custodies, Valuation.LOW),
        lp_supply=check_u64(lp_supply),
        lp_price_usd=lp_token_price_usd(spot, lp_supply),
    )


def get_add_liquidity_amount_and_fee(
    custodies: Sequence[PricedCustody], custody_key: object, lp_supply: int, amount_in: int
) -> AddLiquidityQuote:
    """View ``get_add_liquidity_amount_and_fee``."""
    return quote_add_liquidity(custodies, custody_key, lp_supply, amount_in)


def get_remove_liquidity_amount_and_fee(
    custodies: Sequence[PricedCustody], custody_key: object, lp_supply: int, lp_amount_in: int
) -> RemoveLiquidityQuote:
    """View ``get_remove_liquidity_amount_and_fee``."""
    return quote_remove_liquidity(custodies, custody_key, lp_supply, lp_amount_in)


def get_swap_amount_and_fees(
    receiving: CustodyState,
    receiving_prices: Prices,
    dispensing: CustodyState,
    dispensing_prices: Prices,
    amount_in: int,
) -> SwapQuote:
    """View ``get_swap_amount_and_fees`` (``custody`` receives, ``other_custody`` pays out)."""
    _require(receiving.key is None or receiving.key != dispensing.key, "SameCustody")
    return quote_swap(receiving, receiving_prices, dispensing, dispensing_prices, amount_in)


def get_oracle_price(prices: Prices) -> OraclePriceView:
    """View ``get_oracle_price`` of an already validated pair."""
    return OraclePriceView(
        price=prices.spot.price,
        exponent=prices.spot.exponent,
        ema_price=prices.ema.price,
        price_usd_e9=prices.spot.to_price_9dp_floor(),
    )
