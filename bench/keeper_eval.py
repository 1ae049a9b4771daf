"""Time the keeper takes to evaluate N open positions (pure CPU, no chain).

    .venv/bin/python bench/keeper_eval.py                  # 1k, 10k, 100k positions
    .venv/bin/python bench/keeper_eval.py --sizes 1000 --repeat 5

Synthetic book: one pool with a SOL custody (longs, collateral in SOL) and a USDC custody
(shorts' collateral), borrow and funding on, realistic fees; positions with random sizes,
leverages 2x-50x and entry prices around the current price, half long and half short. The
measured call is exactly what the liquidation job runs each tick,
:func:`perpool_keeper.evaluate.evaluate` (the program's integer math via ``perpool.quotes``,
custodies accrued once per pair), after the accounts are decoded.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from benchlib import write_json
from solders.pubkey import Pubkey

from perpool import quotes as q
from perpool.math import Side
from perpool_keeper.chain import PositionRecord
from perpool_keeper.evaluate import evaluate

NOW = 1_800_000_000
SOL_KEY, USDC_KEY = Pubkey.new_unique(), Pubkey.new_unique()


def custodies() -> dict[Pubkey, q.CustodyState]:
    pricing = q.PricingParams(max_leverage=250 * 10_000)
    fees = q.Fees(open_position_bps=10, close_position_bps=10, liquidation_reward_bps=10)
    sol = q.CustodyState(
        decimals=9,
        pricing=pricing,
        fees=fees,
        borrow_rate=q.BorrowRateParams(slope1=100_000, optimal_utilization=1_000_000_000),
        borrow_state=q.BorrowRateState(last_update=NOW - 600),
        assets=q.Assets(owned=1_000_000 * 10**9, locked=300_000 * 10**9),
        funding=q.FundingParams(funding_c=1_000, max_hourly_rate=1_000_000),
        funding_state=q.FundingState(last_update=NOW - 600),
        key=SOL_KEY,
    )
    usdc = q.CustodyState(
        decimals=6,
        is_stable=True,
        pricing=pricing,
        fees=fees,
        borrow_rate=q.BorrowRateParams(slope1=100_000, optimal_utilization=1_000_000_000),
        borrow_state=q.BorrowRateState(last_update=NOW - 600),
        assets=q.Assets(owned=100_000_000 * 10**6, locked=30_000_000 * 10**6),
        key=USDC_KEY,
    )
    return {SOL_KEY: sol, USDC_KEY: usdc}


def book(n: int, seed: int = 1) -> list[PositionRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        side = Side.LONG if i % 2 == 0 else Side.SHORT
        size = rng.randint(100, 100_000) * 10**6
        leverage = rng.uniform(2, 50)
        collateral_usd = int(size / leverage)
        entry = int(rng.uniform(95, 105) * 10**9)
        if side is Side.LONG:
            collateral = (SOL_KEY, collateral_usd * 10**9 // (entry // 1000) // 1000)
            locked = size * 10**9 // entry
        else:
            collateral = (USDC_KEY, collateral_usd)
            locked = size
        state = q.PositionState(
            side=side,
            price=entry,
            size_usd=size,
            collateral_usd=collateral_usd,
            collateral_amount=max(1, collateral[1]),
            locked_amount=locked,
        )
        out.append(
            PositionRecord(Pubkey.new_unique(), Pubkey.new_unique(), SOL_KEY, collateral[0], state)
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    table = custodies()
    prices: dict[Pubkey, q.Prices | str] = {
        SOL_KEY: q.Prices.of(100 * 10**8, -8),
        USDC_KEY: q.Prices.of(10**8, -8),
    }
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        positions = book(n)
        runs = []
        for _ in range(max(1, args.repeat if n < 100_000 else 1)):
            started = time.perf_counter()
            result = evaluate(positions, table, prices, NOW, 50_000_000 * 10**6)
            runs.append(time.perf_counter() - started)
        best = min(runs)
        results.append(
            {
                "positions": n,
                "seconds_best": round(best, 4),
                "seconds_median": round(statistics.median(runs), 4),
                "us_per_position": round(best / n * 1e6, 1),
                "liquidatable": len(result.candidates),
                "errors": len(result.errors),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    if args.json:
        write_json(args.json, {"repeat": args.repeat, "sizes": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
