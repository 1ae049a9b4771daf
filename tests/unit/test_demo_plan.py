"""The demo's price path and participants' plans (no chain): deterministic, the drop as
documented, every action inside the path, leverage within the shipped spec's limits, and the
ladder trades placed inside the first liquidation step."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from perpool.custody_config import ONE_STEP
from perpool.demo.actors import TRADER_KINDS, build_plan
from perpool.demo.pricepath import EXPO, LEADER, generate
from perpool.demo.run import shipped_spec
from perpool.spec import load_spec

BPS = 10_000


def spec_tokens() -> dict[str, Any]:
    """The shipped spec's custodies in the shape of :class:`perpool.exchange.Token`."""
    out = {}
    for custody in load_spec(shipped_spec()).custodies:
        c = custody.config
        steps = c.get("liquidation_steps", ONE_STEP)
        account = SimpleNamespace(
            pricing=SimpleNamespace(
                max_leverage=c.get("max_leverage", 250 * BPS),
                max_initial_leverage=c.get("max_initial_leverage", 100 * BPS),
            ),
            liquidation=SimpleNamespace(
                steps=[SimpleNamespace(margin_fraction_bps=m, close_bps=x) for m, x in steps],
                num_steps=len(steps),
            ),
            fees=SimpleNamespace(close_position_bps=c.get("close_position_bps", 0)),
        )
        out[custody.symbol] = SimpleNamespace(decimals=custody.decimals, account=account)
    return out


@pytest.mark.parametrize("steps", [10, 16, 48, 100])
def test_path_is_seeded_and_drops_as_documented(steps: int) -> None:
    path = generate(steps, seed=3, drop_pct=35, step_minutes=30)
    assert path == generate(steps, seed=3, drop_pct=35, step_minutes=30)
    assert path != generate(steps, seed=4, drop_pct=35, step_minutes=30)
    assert path.steps == steps
    assert 0 < path.drop_start < path.drop_end < path.rebound_end < steps - 1
    leader = path.prices[LEADER]
    assert len(set(leader)) == steps
    assert path.step_of(leader[path.drop_end]) == path.drop_end
    before, low = leader[path.drop_start - 1], leader[path.drop_end]
    assert abs(Decimal(low) / Decimal(before) - Decimal("0.65")) < Decimal("0.000001")
    assert path.prices["ETH2"] == path.prices["ETH"]
    assert set(path.prices["USDC"]) == {10**-EXPO}
    assert path.minutes[0] == 0
    for step in range(1, steps):
        fast = path.drop_start <= step <= path.drop_end
        assert path.minutes[step] == (10 if fast else 30)


def test_csv_rows_are_the_path(tmp_path: Path) -> None:
    path = generate(12, seed=1)
    rows = path.write_csv("WBTC", tmp_path / "w.csv", 2.5).read_text().splitlines()
    assert rows[0] == "t,price"
    for step, row in enumerate(rows[1:]):
        t, price = row.split(",")
        assert float(t) == step * 2.5
        assert Decimal(price).scaleb(-EXPO) == path.price("WBTC", step)


@pytest.mark.parametrize(("steps", "traders"), [(10, 1), (16, 8), (48, 16), (60, 30)])
def test_plan_fits_the_path_and_the_spec(steps: int, traders: int) -> None:
    path = generate(steps, seed=7)
    tokens = spec_tokens()
    plan = build_plan(path, traders, tokens)
    kinds = [a.kind for a in plan.actors.values() if a.role == "trader"]
    assert len(kinds) == traders
    assert kinds[: len(TRADER_KINDS)] == [k for k, _ in TRADER_KINDS][:traders]
    assert all(0 < a.step < steps for a in plan.timeline)
    assert all(a.kind == "deposit" for a in plan.setup)
    opened: set[tuple[str, str, str]] = set()
    for action in plan.timeline:
        actor = plan.actors[action.actor]
        key = (action.actor, action.symbol, action.side or "")
        if action.kind == "open":
            assert key not in opened, "one position per market and side"
            opened.add(key)
            assert action.leverage is not None
            leverage_bps = int(Decimal(action.leverage) * BPS)
            pricing = tokens[action.symbol].account.pricing
            assert BPS < leverage_bps <= pricing.max_initial_leverage, action
        if action.kind in ("open", "add_collateral", "swap", "deposit"):
            paying = action.collateral or action.symbol
            assert actor.funding.get(paying, 0) > 0, action


def test_ladder_trades_land_inside_the_first_liquidation_step() -> None:
    path = generate(48, seed=7)
    tokens = spec_tokens()
    plan = build_plan(path, len(TRADER_KINDS), tokens)
    ladder = [
        a
        for a in plan.timeline
        if a.kind == "open" and plan.actors[a.actor].kind in ("ladder-long", "bottom-short")
    ]
    assert len(ladder) == 2
    for action in ladder:
        assert action.leverage is not None
        inverse_bps = BPS * BPS / Decimal(action.leverage) / BPS
        entry = path.price(action.symbol, action.step)
        # The first later step at which the margin (1/leverage - adverse move - close fee) is
        # below the maintenance margin (1% at the spec's 100x) is inside the first ladder step.
        for step in range(action.step + 1, path.steps):
            price = path.price(action.symbol, step)
            adverse = (entry - price if action.side == "long" else price - entry) * BPS / entry
            margin = inverse_bps - Decimal(adverse) - 6
            if margin < 100:
                assert 50 <= margin < 100, (action, step, margin)
                break
        else:
            pytest.fail(f"{action} is never liquidated on the path")
