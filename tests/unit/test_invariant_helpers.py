"""The stateful invariants test's pure helpers: sizing, amounts, exact values, the LP price
check and the report."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import pytest
from invariants import RunStats, Violation, check_lp_price_kept, pick_amount, run_size, value_usd


def test_run_size_defaults_and_scaling() -> None:
    assert run_size(None, 6, 30, 28) == (6, 30)
    assert run_size("", 6, 30, 28) == (6, 30)
    # 4000 steps: 160 per example over 25 examples.
    assert run_size("4000", 6, 30, 28) == (25, 160)
    # Few steps: examples of the default length.
    assert run_size("90", 6, 30, 28) == (3, 30)
    # Many steps: capped at 400 per example and at the pool budget.
    assert run_size("1000000", 6, 30, 28) == (28, 400)
    with pytest.raises(ValueError, match="positive"):
        run_size("0", 6, 30, 28)


def test_pick_amount_never_exceeds_the_balance() -> None:
    assert pick_amount(1_000, ("units", 7)) == 7
    assert pick_amount(5, ("units", 7)) == 5
    assert pick_amount(1_000, ("bps", 2_500)) == 250
    assert pick_amount(3, ("bps", 1)) == 1
    assert pick_amount(0, ("bps", 1)) == 0
    assert pick_amount(1_000, ("all", 0)) == 1_000
    with pytest.raises(ValueError, match="unknown"):
        pick_amount(1, ("drain", 0))


def test_value_usd_is_exact() -> None:
    # 1.5 SOL (9 dp) at $100 (expo -8) = $150; one base unit at $0.01 is a fraction of a unit.
    assert value_usd(1_500_000_000, 9, 100 * 10**8, -8) == 150_000_000
    assert value_usd(1, 9, 10**6, -8) == Fraction(1, 10**5)
    assert value_usd(3, 6, 1_000_001, -6) == Fraction(3_000_003, 10**6)


def _view(spot: int, supply: int, price: int) -> SimpleNamespace:
    return SimpleNamespace(spot_usd=spot, lp_supply=supply, lp_price_usd=price)


def test_lp_price_check() -> None:
    # Supplies are minted LP; the locked LP (1,000,000 units) counts in the price: $1000 over
    # 999 minted LP is $1, $2001 over 1999 is $1.0005.
    lp = 10**6
    assert check_lp_price_kept(
        _view(1_000 * lp, 999 * lp, 1_000_000), _view(2_001 * lp, 1_999 * lp, 1_000_500), "x"
    )
    # Not comparable: a view failed, or no LP tokens on one side.
    assert not check_lp_price_kept(None, _view(1, 1, 1), "x")
    assert not check_lp_price_kept(_view(0, 0, 1_000_000), _view(5, 5, 1_000_000), "x")
    # Exactly: $1000/1000 LP -> $1999.999999/2000 LP fell even though the rounded price did not.
    with pytest.raises(Violation, match="LP price fell on deposit"):
        check_lp_price_kept(
            _view(1_000 * lp, 999 * lp, 1_000_000),
            _view(2_000 * lp - 1, 1_999 * lp, 1_000_000),
            "deposit",
        )
    # A pool shrunk to 2 units of USD and 1 minted LP unit: a rise over minted supply alone,
    # a fall once the locked LP counts.
    with pytest.raises(Violation):
        check_lp_price_kept(_view(1_000 * lp, 999 * lp, 1_000_000), _view(2, 1, 1_000_000), "x")
    with pytest.raises(Violation):
        check_lp_price_kept(
            _view(1_000 * lp, 999 * lp, 1_000_000), _view(1_000 * lp, 999 * lp, 999_999), "x"
        )


def test_report_records_what_ran(tmp_path: Path) -> None:
    stats = RunStats(seed=7, max_examples=2, steps_per_example=3)
    stats.examples, stats.steps = 1, 3
    stats.steps_per_rule["swap"] += 3
    stats.rejected("swap", "ZeroAmount")
    stats.violation("swap", "boom", replay=False)
    stats.finish()
    path = tmp_path / "sub" / "report.json"
    stats.write(path)
    report = json.loads(path.read_text())
    assert report["seed"] == 7
    assert report["steps"] == 3
    assert report["steps_per_rule"] == {"swap": 3}
    assert report["rejections"] == {"ZeroAmount": 1}
    assert report["rejections_by_rule"] == {"swap: ZeroAmount": 1}
    assert report["violations"][0]["message"] == "boom"
    assert "violations=1" in stats.summary()
