"""Borrow accrual and funding: ``accrue_borrow`` then ``update_funding`` for every custody of
every pool, one transaction per custody (the custody is the in-flight target)."""

from __future__ import annotations

import logging
from typing import Any

from solders.instruction import Instruction

from perpool import trade
from perpool_keeper.chain import load_pool
from perpool_keeper.config import AccrualJobConfig
from perpool_keeper.jobs.base import Context, tx_summary
from perpool_keeper.logs import log

logger = logging.getLogger("perpool_keeper.accrual")


class AccrualJob:
    name = "accrual"

    def __init__(self, ctx: Context, config: AccrualJobConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.interval_sec = config.interval_sec

    async def tick(self) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        for pool_name in self.ctx.pools:
            try:
                snapshot = await load_pool(self.ctx.rpc, pool_name, self.ctx.metrics)
            except Exception as exc:
                log(logger, logging.ERROR, "pool unreadable", pool=pool_name, error=str(exc))
                results.append({"target": pool_name, "status": "error", "error": str(exc)})
                continue
            for info in snapshot.custodies.values():
                mint = info.mint

                async def build(mint: Any = mint, pool_name: str = pool_name) -> list[Instruction]:
                    client = self.ctx.rpc.client
                    keys = client.custody_keys(pool_name, mint)
                    ixs = [
                        client.ix(
                            "accrue_borrow", accounts={"pool": keys.pool, "custody": keys.custody}
                        )
                    ]
                    if self.config.funding:
                        ixs.append(trade.update_funding_ix(client, pool_name, mint))
                    return ixs

                try:
                    result = await self.ctx.sender.submit("accrual", f"custody:{info.key}", build)
                except Exception as exc:
                    log(
                        logger,
                        logging.ERROR,
                        "accrual failed",
                        custody=str(info.key),
                        error=str(exc),
                    )
                    results.append({"target": str(info.key), "status": "error", "error": str(exc)})
                    continue
                results.append(tx_summary(result))
        return {"custodies": results}
