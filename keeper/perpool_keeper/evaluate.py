"""Which positions are liquidatable now, most urgent first: pure CPU, no chain access.

Each position is checked with :func:`perpool.quotes.position_liquidation_step` on custodies
accrued to ``now`` exactly as the program's ``load_position_custodies`` does (borrow on the
collateral custody, funding on the traded one, against the pool's stored AUM), so the keeper
and the program agree to the unit. Accrued custodies are computed once per (custody,
collateral custody) pair, not once per position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from solders.pubkey import Pubkey

from perpool import quotes as q
from perpool.math import BPS_DENOMINATOR, Side
from perpool_keeper.chain import PositionRecord


@dataclass(frozen=True)
class Candidate:
    position: PositionRecord
    step: int
    """The ladder step that applies (0 = the maintenance margin)."""
    margin_bps: int
    """Equity as a fraction of size at the last price (lower = more urgent; may be negative)."""

    @property
    def side(self) -> str:
        return "long" if self.position.state.side is Side.LONG else "short"

    def urgency(self) -> tuple[int, int, int]:
        return (-self.step, self.margin_bps, -self.position.state.size_usd)


@dataclass
class Evaluation:
    candidates: list[Candidate] = field(default_factory=list)
    healthy: int = 0
    errors: dict[Pubkey, str] = field(default_factory=dict)
    """Positions that could not be evaluated, with the program error that stopped them."""


def margin_bps(
    position: q.PositionState,
    custody: q.CustodyState,
    prices: q.Prices,
    collateral: q.CustodyState,
    collateral_prices: q.Prices,
    pool_aum_usd: int,
) -> int:
    quote = q.quote_close(
        position, custody, prices, collateral, collateral_prices, BPS_DENOMINATOR, pool_aum_usd
    )
    return q.full_close_margin(position, quote) * BPS_DENOMINATOR // max(1, position.size_usd)


def evaluate(
    positions: Iterable[PositionRecord],
    custodies: Mapping[Pubkey, q.CustodyState],
    prices: Mapping[Pubkey, q.Prices | str],
    now: int,
    pool_aum_usd: int,
) -> Evaluation:
    """``prices[custody]`` is the custody's validated prices or the program error that reading
    them raised (e.g. ``StaleOraclePrice``): its positions are reported, not evaluated."""
    out = Evaluation()
    accrued: dict[tuple[Pubkey, Pubkey], tuple[q.CustodyState, q.CustodyState]] = {}
    for record in positions:
        try:
            pair = (record.custody, record.collateral_custody)
            loaded = accrued.get(pair)
            if loaded is None:
                loaded = q.load_position_custodies(
                    custodies[record.custody],
                    custodies[record.collateral_custody],
                    now,
                    pool_aum_usd,
                )
                accrued[pair] = loaded
            custody, collateral = loaded
            price = prices[record.custody]
            collateral_price = prices[record.collateral_custody]
            if isinstance(price, str):
                raise q.QuoteError(price)
            if isinstance(collateral_price, str):
                raise q.QuoteError(collateral_price)
            step = q.position_liquidation_step(
                record.state, custody, price, collateral, collateral_price, pool_aum_usd
            )
        except KeyError:
            out.errors[record.key] = "UnknownCustody"
            continue
        except q.PROGRAM_ERRORS as exc:
            out.errors[record.key] = str(getattr(exc, "program_error", exc))
            continue
        if step is None:
            out.healthy += 1
            continue
        try:
            ratio = margin_bps(
                record.state, custody, price, collateral, collateral_price, pool_aum_usd
            )
        except q.PROGRAM_ERRORS:
            ratio = -(10**18)
        out.candidates.append(Candidate(record, step, ratio))
    out.candidates.sort(key=Candidate.urgency)
    return out
