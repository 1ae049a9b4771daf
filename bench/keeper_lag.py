"""Lag from the price post that makes a position liquidatable to the keeper's liquidation
landing, in slots and milliseconds, on a fresh localnet.

    .venv/bin/python bench/keeper_lag.py --rounds 5

Each round opens a ~50x long, posts a price 1.5% lower (the post that makes it liquidatable,
confirmed), then runs the keeper's liquidation job at once, as the kick after the keeper's own
price post does: scan (getProgramAccounts), evaluate, simulate, send, confirm. Reported: slots
from the post's slot to the liquidation's slot, and wall time from the post's confirmation to
the liquidation's confirmation. Slot time is the localnet's (``--slot-ms``, default 400).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from benchlib import write_json
from pool_env import TokenSpec, build_pool_env
from solders.keypair import Keypair
from solders.signature import Signature
from trade_support import (
    SOL,
    USD,
    USDC,
    long_market,
    new_trader,
    open_position,
    provide_liquidity,
    set_prices,
)

from perpool.localnet import LocalnetProcess, airdrop
from perpool_keeper.config import load_config
from perpool_keeper.daemon import Keeper

P100 = 100 * 10**8
TOKENS = (TokenSpec("SOL", 9, False, P100, -8), TokenSpec("USDC", 6, True, 1_000_000, -6))
FEES = {"open_position_bps": 10, "close_position_bps": 10, "liquidation_reward_bps": 10}


async def run(rounds: int, slot_ms: int) -> dict[str, object]:
    net = LocalnetProcess.start(slot_ms=slot_ms)
    try:
        env = await build_pool_env(net.url, net.faucet(), TOKENS)
        for symbol in env.specs:
            await env.configure(symbol, **FEES)
        await provide_liquidity(env, "SOL", 100 * SOL)
        await provide_liquidity(env, "USDC", 10_000 * USDC)
        payer = Keypair()
        await airdrop(env.client.connection, payer.pubkey(), 100 * SOL)
        config = load_config(None, {"PERPOOL_KEEPER__RPC__URLS": net.url})
        config.keeper.pools = [env.pool]
        keeper = Keeper(config, payer)
        job = keeper.jobs["liquidation"]
        slots, millis = [], []
        for _ in range(rounds):
            await set_prices(env, SOL=P100, USDC=1_000_000)
            trader = await new_trader(env, SOL=SOL)
            await open_position(
                env, trader, long_market(env), collateral=SOL // 5, size_usd=1_000 * USD
            )
            await set_prices(env, SOL=P100 * 985 // 1000)  # confirmed on return
            posted_at = time.perf_counter()
            keys = env.client.custody_keys(env.pool, env.mint("SOL"))
            status = await env.client.connection.get_account_info(keys.oracle)
            post_slot = status.context.slot
            summary = await job.tick()
            landed = [r for r in summary["results"] if r["status"] == "landed"]
            if not landed:
                raise RuntimeError(f"not liquidated: {summary}")
            elapsed = time.perf_counter() - posted_at
            sig = landed[0]["signature"]
            st = (
                await env.client.connection.get_signature_statuses([Signature.from_string(sig)])
            ).value[0]
            assert st is not None
            slots.append(st.slot - post_slot)
            millis.append(elapsed * 1000)
        await keeper.close()
        await env.client.close()
        return {
            "slot_ms": slot_ms,
            "rounds": rounds,
            "lag_slots": slots,
            "lag_ms": [round(m) for m in millis],
            "lag_slots_median": statistics.median(slots),
            "lag_ms_median": round(statistics.median(millis)),
        }
    finally:
        net.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slot-ms", type=int, default=400)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    result = asyncio.run(run(args.rounds, args.slot_ms))
    print(json.dumps(result))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
