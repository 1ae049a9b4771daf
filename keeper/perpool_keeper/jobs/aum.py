"""Pool AUM refresh: ``update_pool_aum`` with every custody and oracle of the pool."""

from __future__ import annotations

import logging
from typing import Any

from solders.instruction import Instruction

from perpool import pda
from perpool_keeper.config import AumJobConfig
from perpool_keeper.jobs.base import Context, tx_summary
from perpool_keeper.logs import log

logger = logging.getLogger("perpool_keeper.aum")


class AumJob:
    name = "aum"

    def __init__(self, ctx: Context, config: AumJobConfig) -> None:
        self.ctx = ctx
        self.interval_sec = config.interval_sec

    async def tick(self) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        for pool_name in self.ctx.pools:

            async def build(pool_name: str = pool_name) -> list[Instruction]:
                remaining = await self.ctx.rpc.call(
                    lambda c: c.pool_remaining_accounts(pool_name), "pool accounts"
                )
                client = self.ctx.rpc.client
                return [
                    client.ix(
                        "update_pool_aum",
                        accounts={"pool": pda.pool(pool_name)},
                        remaining=remaining,
                    )
                ]

            try:
                result = await self.ctx.sender.submit("aum", f"pool:{pda.pool(pool_name)}", build)
            except Exception as exc:
                log(logger, logging.ERROR, "aum refresh failed", pool=pool_name, error=str(exc))
                results.append({"target": pool_name, "status": "error", "error": str(exc)})
                continue
            results.append(tx_summary(result))
        return {"pools": results}
