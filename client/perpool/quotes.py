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
    prices = q.read_custom_oracle(oracle, custody.oracle, now)  # or Prices.from_custom_oracle
    position = q.PositionState.from_account(await program.account["Position"].fetch(pos_key))

    # a long: the traded custody is also the collateral custody
    expected = q.get_pnl(position, custody, prices, custody, prices, now)
    assert q.PositionPnl.from_decoded(simulated_return_value) == expected

    pool = [q.PricedCustody(c, p) for c, p in zip(custodies, prices_in_pool_order)]
    assert q.AumView.from_decoded(view) == q.get_assets_under_management(pool, lp_supply)

View instruction -> Python (arguments in the program's account order; ``custody`` is the
traded custody, ``other_custody`` the collateral / dispensing one):

====================================  ========================================================
``get_entry_price_and_fee``           ``get_entry_price_and_fee(side, custody, prices,
                                      collateral_custody, collateral_prices, collateral_amount,
                                      size_usd) -> OpenQuote``
``get_exit_price_and_fee``            ``get_exit_price_and_fee(position, custody, prices,
                                      collateral_custody, collateral_prices, now, close_bps)
                                      -> CloseQuote``
``get_pnl``                           ``get_pnl(position, ..., now) -> PositionPnl``
``get_liquidation_price``             ``get_liquidation_price(position, ..., now) -> int``
``get_liquidation_state``             ``get_liquidation_state(position, ..., now) -> bool``
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
:func:`quote_close`, :func:`position_is_liquidatable`, :func:`aum_usd`,
:func:`quote_add_liquidity`, :func:`quote_remove_liquidity`, :func:`quote_swap`; and the
bookkeeping the instructions do with them: :func:`accrue_borrow`, :func:`settle_close`,
:func:`remove_from_book`, :func:`collect_fee`, :func:`close_fee_amount`,
:func:`liquidation_amounts`, :func:`close_position_remainder`. State-changing ones return a new
:class:`CustodyState` (or :class:`PositionState`).

Views over a position take ``now`` (the cluster's ``unix_timestamp`` of the simulated slot)
because the program accrues the collateral custody's borrow index to ``now`` on a copy before
quoting; the borrow fee is the only part of a position view that depends on time. The oracle
checks (age, confidence) also depend on ``now``: use :func:`read_custom_oracle` with the same
``now`` to reproduce a stale-price failure.

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
    RATE_ONE,
    U64_MAX,
    U128_MAX,
    MathError,
    OraclePrice,
    Side,
    Valuation,
    accrue_index,
    check_i64,
    check_u64,
    close_amounts,
    custody_value_usd,
    entry_price_9dp,
    exit_price_9dp,
    fee_tokens,
    fee_usd,
    hourly_borrow_rate,
    leverage_bps,
    liquidation_price,
    lp_to_mint,
    lp_token_price_usd,
    maintenance_margin_bps_for_max_leverage,
    mul_div_floor,
    mul_div_floor_u64,
    partial_close,
    price_within_confidence,
    split_bps_ceil,
    split_bps_floor,
    split_fee,
    to_u64,
    token_to_usd_floor,
    usd_for_lp,
    usd_to_token_ceil,
    usd_to_token_floor,
    utilization_ceil,
)
from perpool.math import borrow_fee_usd as math_borrow_fee_usd
from perpool.math import is_liquidatable as math_is_liquidatable

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "PROGRAM_ERRORS",
    "AddLiquidityQuote",
    "Assets",
    "AumView",
    "BorrowRateParams",
    "BorrowRateState",
    "CloseQuote",
    "CustodyState",
    "CustomOracleState",
    "Fees",
    "LiquidationAmounts",
    "OpenQuote",
    "OracleLimits",
    "OraclePriceView",
    "PositionPnl",
    "PositionState",
    "PositionTotals",
    "PricedCustody",
    "Prices",
    "PricingParams",
    "QuoteError",
    "RemoveLiquidityQuote",
    "SwapQuote",
    "TokenRatios",
    "accrue_borrow",
    "aum_usd",
    "available",
    "book_value_usd",
    "check_side",
    "close_fee_amount",
    "close_position_remainder",
    "collect_fee",
    "custody_hourly_borrow_rate",
    "custody_utilization",
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
    "liquidation_amounts",
    "maintenance_margin_bps",
    "position_borrow_fee_usd",
    "position_is_liquidatable",
    "quote_add_liquidity",
    "quote_close",
    "quote_open",
    "quote_remove_liquidity",
    "quote_swap",
    "read_custom_oracle",
    "remove_from_book",
    "settle_close",
    "side_from_decoded",
    "size_over_entry",
    "trade_price",
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


@dataclass(frozen=True)
class Fees(_FromDecoded):
    open_position_bps: int = 0
    close_position_bps: int = 0
    swap_bps: int = 0
    add_liquidity_bps: int = 0
    remove_liquidity_bps: int = 0
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
            key=key,
        )

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


@dataclass(frozen=True)
class PositionPnl(_FromDecoded):
    profit_usd: int
    loss_usd: int
    borrow_fee_usd: int
    close_fee_usd: int
    exit_price: int


@dataclass(frozen=True)
class AddLiquidityQuote(_FromDecoded):
    lp_amount: int
    fee_amount: int
    deposit_usd: int
    aum_usd: int


@dataclass(frozen=True)
class RemoveLiquidityQuote(_FromDecoded):
    amount_out: int
    fee_amount: int
    withdraw_usd: int
    aum_usd: int


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


@dataclass(frozen=True)
class LiquidationAmounts:
    """How ``liquidate`` splits the payout, and the fee it books (collateral tokens)."""

    reward_amount: int
    owner_amount: int
    fee_amount: int


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
    what is collected (the whole fee when a profit was paid, else at most ``kept``).
    """
    for value in (collateral_amount, locked_amount, paid_out, fee_amount):
        check_u64(value)
    assets = custody.assets
    collateral = _checked_sub(assets.collateral, collateral_amount)
    locked = _checked_sub(assets.locked, locked_amount)
    kept = collateral_amount - paid_out
    collected = min(fee_amount, kept) if kept >= 0 else fee_amount
    protocol = split_fee(collected, custody.fees.protocol_share_bps).protocol_share
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


# --- positions (state/position.rs) -------------------------------------------------------------


def trade_price(side: Side, prices: Prices, opening: bool) -> OraclePrice:
    """Longs buy at the higher of spot/EMA and sell at the lower; shorts the reverse."""
    buys_high = (side is Side.LONG) == opening
    return prices.max() if buys_high else prices.min()


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
) -> OpenQuote:
    """``Position::quote_open``: entry price, open fee, net collateral, leverage, tokens locked
    and the liquidation price of a new position."""
    check_u64(collateral_amount)
    check_u64(size_usd)
    _require(collateral_amount > 0 and size_usd > 0, "ZeroAmount")
    decimals = collateral_custody.decimals
    entry_price = entry_price_9dp(side, trade_price(side, prices, opening=True))
    open_fee_usd = fee_usd(size_usd, custody.fees.open_position_bps)
    # Collateral valued low, fee tokens rounded up: both in the pool's favour.
    gross_collateral_usd = token_to_usd_floor(collateral_amount, decimals, collateral_prices.min())
    fee_amount = usd_to_token_ceil(open_fee_usd, decimals, collateral_prices.min())
    _require(
        fee_amount < collateral_amount and open_fee_usd < gross_collateral_usd,
        "InsufficientCollateral",
    )
    collateral_usd = gross_collateral_usd - open_fee_usd
    leverage = leverage_bps(size_usd, collateral_usd)
    # Tokens that back what the pool may pay beyond the collateral: the borrowed part for a
    # long (paid in the traded token), the full size for a short.
    borrowed_usd = max(size_usd - collateral_usd, 0) if side is Side.LONG else size_usd
    locked_amount = usd_to_token_ceil(borrowed_usd, decimals, collateral_prices.min())
    close_fee = fee_usd(size_usd, custody.fees.close_position_bps)
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


def quote_close(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    close_bps: int,
) -> CloseQuote:
    """``Position::quote_close``: settle ``close_bps`` of the position at the current price.

    The slice pays the close fee on its size and its share (rounded up) of the borrow fees owed.
    The payout is converted to tokens at the high collateral price, rounded down, and capped at
    the slice's collateral plus the tokens locked for it.
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
    exit_price = exit_price_9dp(position.side, trade_price(position.side, prices, opening=False))
    close_fee_usd = fee_usd(part.size.closed, custody.fees.close_position_bps)
    borrow_owed = position_borrow_fee_usd(position, collateral_custody)
    borrow_fee = borrow_owed if full else split_bps_ceil(borrow_owed, close_bps).closed
    fees = _checked_add(close_fee_usd, borrow_fee)
    amounts = close_amounts(
        position.side, part.size.closed, part.collateral.closed, position.price, exit_price, fees
    )
    profit, payout = amounts.profit_usd, amounts.payout_usd
    uncapped_amount = usd_to_token_floor(payout, decimals, collateral_prices.max())
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
    )


def position_is_liquidatable(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
) -> bool:
    """``Position::is_liquidatable``: margin after a full-close quote (profit, loss, close and
    borrow fees) below the maintenance margin."""
    q = quote_close(
        position, custody, prices, collateral_custody, collateral_prices, BPS_DENOMINATOR
    )
    return math_is_liquidatable(
        position.collateral_usd,
        q.profit_usd,
        q.loss_usd,
        _checked_add(q.close_fee_usd, q.borrow_fee_usd),
        position.size_usd,
        maintenance_margin_bps(custody),
    )


def close_fee_amount(quote: CloseQuote, collateral_custody: CustodyState, prices: Prices) -> int:
    """The ``fee_amount`` ``close_position``/``liquidate`` pass to :func:`settle_close`:
    close + borrow fee in collateral tokens at the high price, rounded down."""
    fees = _checked_add(quote.close_fee_usd, quote.borrow_fee_usd)
    return usd_to_token_floor(fees, collateral_custody.decimals, prices.max())


def close_position_remainder(
    position: PositionState, quote: CloseQuote, collateral_custody: CustodyState
) -> PositionState:
    """``close_position``'s update of a *partially* closed position (a full close closes the
    account instead), from the :func:`quote_close` of that close.

    ``collateral_custody`` is the custody the quote was made with (accrued to ``now``). The
    slice's size, collateral and locked tokens come out of the position; the borrow fee owed but
    not paid with the slice stays in ``unpaid_borrow_fee_usd`` and the snapshot moves to the
    custody's index. (The instruction first refuses a partial close of a liquidatable position:
    check :func:`position_is_liquidatable`.)
    """
    if quote.size_usd >= position.size_usd:
        raise ValueError("a full close leaves no position (close_position closes the account)")
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
    )


def liquidation_amounts(
    position: PositionState,
    custody: CustodyState,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    quote: CloseQuote,
) -> LiquidationAmounts:
    """``liquidate``'s split of the full-close payout: the liquidator's reward (bps of size, in
    tokens at the high price, at most the payout) and the owner's rest."""
    fee_amount = close_fee_amount(quote, collateral_custody, collateral_prices)
    reward_usd = fee_usd(position.size_usd, custody.fees.liquidation_reward_bps)
    reward = usd_to_token_floor(reward_usd, collateral_custody.decimals, collateral_prices.max())
    reward = min(reward, quote.payout_amount)
    return LiquidationAmounts(
        reward_amount=reward, owner_amount=quote.payout_amount - reward, fee_amount=fee_amount
    )


# --- pool value (state/pool.rs) ----------------------------------------------------------------


def aum_usd(custodies: Sequence[PricedCustody], valuation: Valuation) -> int:
    """``Pool::aum_usd``: owned tokens valued per ``valuation``, plus what open positions have
    lost (up to their side's collateral), minus what they have won; books valued at spot."""
    assets = trader_profit = trader_loss = 0
    for entry in custodies:
        c, prices = entry.custody, entry.prices
        value = custody_value_usd(c.assets.owned, c.decimals, prices.spot, prices.ema, valuation)
        assets = _checked_add(assets, value, U128_MAX)
        price = prices.spot.to_price_9dp_floor()
        long_value = book_value_usd(c.longs, price)
        if long_value >= c.longs.size_usd:
            trader_profit = _checked_add(trader_profit, long_value - c.longs.size_usd, U128_MAX)
        else:
            loss = min(c.longs.size_usd - long_value, c.longs.collateral_usd)
            trader_loss = _checked_add(trader_loss, loss, U128_MAX)
        short_value = book_value_usd(c.shorts, price)
        if short_value <= c.shorts.size_usd:
            trader_profit = _checked_add(trader_profit, c.shorts.size_usd - short_value, U128_MAX)
        else:
            loss = min(short_value - c.shorts.size_usd, c.shorts.collateral_usd)
            trader_loss = _checked_add(trader_loss, loss, U128_MAX)
    aum = max(_checked_add(assets, trader_loss, U128_MAX) - trader_profit, 0)
    return to_u64(aum)


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
    fee_amount = fee_tokens(amount_in, c.fees.add_liquidity_bps)
    net = _checked_sub(amount_in, fee_amount)
    # Deposit valued low, pool valued high: never mints more than the deposit is worth.
    deposit_usd = custody_value_usd(net, c.decimals, prices.spot, prices.ema, Valuation.LOW)
    aum = aum_usd(custodies, Valuation.HIGH)
    _require(lp_supply == 0 or aum > 0, "EmptyPool")
    lp_amount = lp_to_mint(deposit_usd, aum, lp_supply)
    _require(lp_amount > 0, "ZeroAmount")
    _check_max_ratio(entry, aum, deposit_usd)
    return AddLiquidityQuote(
        lp_amount=lp_amount, fee_amount=fee_amount, deposit_usd=deposit_usd, aum_usd=aum
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
    # Pool valued low, tokens paid at the high price: never pays more than the LP share.
    aum = aum_usd(custodies, Valuation.LOW)
    _require(aum > 0, "EmptyPool")
    withdraw_usd = usd_for_lp(lp_amount_in, aum, lp_supply)
    gross = usd_to_token_floor(withdraw_usd, c.decimals, prices.max())
    fee_amount = fee_tokens(gross, c.fees.remove_liquidity_bps)
    amount_out = _checked_sub(gross, fee_amount)
    _require(amount_out > 0, "ZeroAmount")
    _require(gross <= available(c), "InsufficientLiquidity")
    _check_min_ratio(entry, aum, withdraw_usd)
    return RemoveLiquidityQuote(
        amount_out=amount_out, fee_amount=fee_amount, withdraw_usd=withdraw_usd, aum_usd=aum
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
    value_usd = token_to_usd_floor(amount_in, receiving.decimals, receiving_prices.min())
    gross = usd_to_token_floor(value_usd, dispensing.decimals, dispensing_prices.max())
    fee_amount = fee_tokens(gross, dispensing.fees.swap_bps)
    amount_out = _checked_sub(gross, fee_amount)
    _require(amount_out > 0, "ZeroAmount")
    _require(gross <= available(dispensing), "InsufficientLiquidity")
    return SwapQuote(amount_out=amount_out, fee_amount=fee_amount, value_usd=value_usd)


# --- view instructions (instructions/views/*.rs), one function per view ------------------------


def check_side(side: Side, custody: CustodyState, collateral_custody: CustodyState) -> None:
    """``open_position::check_side``: a long's collateral is the traded custody; a short's is a
    stable custody against a non-stable one."""
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
) -> OpenQuote:
    """View ``get_entry_price_and_fee`` (``custody`` traded, collateral the ``other_custody``)."""
    check_side(side, custody, collateral_custody)
    return quote_open(
        side, custody, prices, collateral_custody, collateral_prices, collateral_amount, size_usd
    )


def _position_view(
    custody: CustodyState, collateral_custody: CustodyState, now: int
) -> tuple[CustodyState, CustodyState]:
    """``PositionView::load``: the collateral custody accrued to ``now`` (on a copy); the
    traded custody is that same copy when both are one account."""
    accrued = accrue_borrow(collateral_custody, now)
    same = custody.key is not None and custody.key == collateral_custody.key
    return (accrued if same else custody), accrued


def get_exit_price_and_fee(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    now: int,
    close_bps: int,
) -> CloseQuote:
    """View ``get_exit_price_and_fee(close_bps)`` at cluster time ``now``."""
    custody, collateral_custody = _position_view(custody, collateral_custody, now)
    return quote_close(position, custody, prices, collateral_custody, collateral_prices, close_bps)


def get_pnl(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    now: int,
) -> PositionPnl:
    """View ``get_pnl`` at cluster time ``now``: PnL and fees of a full close."""
    q = get_exit_price_and_fee(
        position, custody, prices, collateral_custody, collateral_prices, now, BPS_DENOMINATOR
    )
    return PositionPnl(
        profit_usd=q.profit_usd,
        loss_usd=q.loss_usd,
        borrow_fee_usd=q.borrow_fee_usd,
        close_fee_usd=q.close_fee_usd,
        exit_price=q.exit_price,
    )


def get_liquidation_price(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    now: int,
) -> int:
    """View ``get_liquidation_price`` at ``now``: 9-dp price with the fees owed now."""
    custody, collateral_custody = _position_view(custody, collateral_custody, now)
    q = quote_close(
        position, custody, prices, collateral_custody, collateral_prices, BPS_DENOMINATOR
    )
    return liquidation_price(
        position.side,
        position.price,
        position.size_usd,
        position.collateral_usd,
        _checked_add(q.close_fee_usd, q.borrow_fee_usd),
        maintenance_margin_bps(custody),
    )


def get_liquidation_state(
    position: PositionState,
    custody: CustodyState,
    prices: Prices,
    collateral_custody: CustodyState,
    collateral_prices: Prices,
    now: int,
) -> bool:
    """View ``get_liquidation_state`` at ``now``: whether ``liquidate`` would accept it."""
    custody, collateral_custody = _position_view(custody, collateral_custody, now)
    return position_is_liquidatable(
        position, custody, prices, collateral_custody, collateral_prices
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
