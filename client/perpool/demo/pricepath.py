"""The demo's price path: a calm drift, a sharp drop of SOL with the other assets following it
in part, a partial rebound, then sideways trading; one price per step and feed.

Prices are integers with :data:`EXPO` (the exponent the keeper posts with). The path is
seeded, so a seed always gives the same path. The keeper replays it from one CSV file per feed
(``t,price`` rows, ``t`` in wall seconds from the keeper's start), one row per step.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perpool.amounts import format_units

EXPO = -8
ONE = 10**-EXPO
"""$1 as a price with :data:`EXPO`."""


@dataclass(frozen=True)
class AssetModel:
    symbol: str
    start: int
    """Price at step 0 (with :data:`EXPO`); the shipped spec's initial price."""
    crash_beta: float
    """Share of the market move (the drop and the rebound) the asset follows."""
    noise: float
    """Standard deviation of its own per-step log return."""


ASSETS = (
    AssetModel("SOL", 150 * ONE, 1.0, 0.0015),
    AssetModel("ETH", 3_000 * ONE, 0.6, 0.002),
    AssetModel("WBTC", 60_000 * ONE, 0.4, 0.0015),
)
STABLES = ("USDC", "USDT")
PAYOFF_UNDERLYING = {"ETH2": "ETH"}
"""A payoff market's oracle carries its underlying's price (the program applies the payoff)."""
LEADER = "SOL"
"""The feed whose price identifies a step on chain (its prices are distinct at every step)."""

MARKET_DRIFT = 0.0006
MARKET_NOISE = 0.003
REBOUND = 0.12
"""How far SOL climbs back from its low (fraction of the low)."""


@dataclass(frozen=True)
class PricePath:
    prices: dict[str, tuple[int, ...]]
    """Feed symbol → price at each step (with :data:`EXPO`)."""
    drop_start: int
    """The first step of the drop (the first lower price)."""
    drop_end: int
    """The step of the low."""
    rebound_end: int
    drop_pct: int
    minutes: tuple[int, ...]
    """Simulated minutes from the previous step to each step (0 for step 0): the drop runs on
    shorter steps, so it happens within a short window."""

    @property
    def steps(self) -> int:
        return len(self.prices[LEADER])

    @property
    def feeds(self) -> list[str]:
        return list(self.prices)

    def hours(self, step: int) -> float:
        """Simulated hours from step 0 to ``step``."""
        return sum(self.minutes[1 : step + 1]) / 60

    def price(self, symbol: str, step: int) -> int:
        return self.prices[symbol][step]

    def human(self, symbol: str, step: int) -> str:
        return format_units(self.price(symbol, step), -EXPO)

    def step_of(self, leader_price: int) -> int | None:
        """The step whose leader price this is (exact), None if none."""
        try:
            return self.prices[LEADER].index(leader_price)
        except ValueError:
            return None

    def write_csv(self, symbol: str, path: Path, step_seconds: float) -> Path:
        rows = ["t,price"]
        rows += [
            f"{round(step * step_seconds, 3)},{self.human(symbol, step)}"
            for step in range(self.steps)
        ]
        path.write_text("\n".join(rows) + "\n")
        return path

    def to_json(self) -> dict[str, Any]:
        return {
            "expo": EXPO,
            "dropStart": self.drop_start,
            "dropEnd": self.drop_end,
            "reboundEnd": self.rebound_end,
            "dropPct": self.drop_pct,
            "minutes": list(self.minutes),
            "prices": {symbol: list(values) for symbol, values in self.prices.items()},
        }


def phases(steps: int) -> tuple[int, int, int]:
    """(drop start, low, rebound end) for a path of ``steps`` steps: the drop begins a little
    before the middle and lasts a sixth of the path (at least 4 steps)."""
    if steps < 10:
        raise ValueError(f"a price path needs at least 10 steps, got {steps}")
    crash = max(4, steps // 6)
    start = max(3, round(steps * 0.45))
    low = start + crash - 1
    rebound_end = min(steps - 2, low + max(2, steps // 8))
    return start, low, rebound_end


def generate(steps: int, seed: int, drop_pct: int = 35, step_minutes: int = 30) -> PricePath:
    """A path of ``steps`` prices per feed, ``step_minutes`` apart (a third of that during the
    drop); SOL falls ``drop_pct`` % over the drop."""
    if not 5 <= drop_pct <= 80:
        raise ValueError(f"drop_pct must be between 5 and 80, got {drop_pct}")
    rng = random.Random(seed)
    start, low, rebound_end = phases(steps)
    crash_len = low - start + 1
    # Market log returns per step: the drop split unevenly over its steps, exactly drop_pct.
    weights = [max(0.3, 1 + rng.gauss(0, 0.35)) for _ in range(crash_len)]
    total = math.log(1 - drop_pct / 100)
    crash = [total * w / sum(weights) for w in weights]
    rebound_len = max(1, rebound_end - low)
    market: list[float] = []
    for step in range(steps):
        if step == 0:
            market.append(0.0)
        elif step < start:
            market.append(MARKET_DRIFT + rng.gauss(0, MARKET_NOISE))
        elif step <= low:
            market.append(crash[step - start])
        elif step <= rebound_end:
            market.append(math.log(1 + REBOUND) / rebound_len + rng.gauss(0, MARKET_NOISE / 2))
        else:
            market.append(rng.gauss(0, 2 * MARKET_NOISE))
    prices: dict[str, tuple[int, ...]] = {}
    for asset in ASSETS:
        level = math.log(asset.start)
        values: list[int] = []
        for step, move in enumerate(market):
            own = 0.0 if step == 0 or start <= step <= low else rng.gauss(0, asset.noise)
            level += asset.crash_beta * move + own
            values.append(max(1, round(math.exp(level))))
        values[0] = asset.start
        prices[asset.symbol] = tuple(values)
    prices[LEADER] = _distinct(prices[LEADER])
    for stable in STABLES:
        prices[stable] = (ONE,) * steps
    for payoff, underlying in PAYOFF_UNDERLYING.items():
        prices[payoff] = prices[underlying]
    fast = max(1, step_minutes // 3)
    minutes = tuple(
        0 if step == 0 else fast if start <= step <= low else step_minutes for step in range(steps)
    )
    return PricePath(prices, start, low, rebound_end, drop_pct, minutes)


def _distinct(values: tuple[int, ...]) -> tuple[int, ...]:
    """The same prices, nudged by the smallest unit where one repeats an earlier one."""
    seen: set[int] = set()
    out = []
    for value in values:
        while value in seen:
            value += 1
        seen.add(value)
        out.append(value)
    return tuple(out)
