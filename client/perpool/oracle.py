"""Posting a custom oracle price as the oracle authority, in human units."""

from __future__ import annotations

import asyncio
import time

from solders.keypair import Keypair

from perpool import pda
from perpool.amounts import AmountError, oracle_price, parse_oracle_price, to_base_units
from perpool.errors import InputError, PerpoolError
from perpool.exchange import Exchange, fetch_decoded
from perpool.pool_setup import chain_now
from perpool.results import ActionResult
from perpool.txn import Status, run

# The program wants publish times strictly increasing and never ahead of the chain's clock;
# a second update within the same chain second waits for the clock to tick.
CLOCK_WAIT_SECONDS = 5.0


async def set_price(
    ex: Exchange,
    authority: Keypair,
    symbol: str,
    price_text: str,
    *,
    conf_text: str | None = None,
    ema_text: str | None = None,
    simulate: bool = False,
    status: Status | None = None,
) -> ActionResult:
    client = ex.client
    token = ex.token(symbol)
    keys = client.custody_keys(ex.pool_name, token.mint)
    if token.oracle != keys.oracle:
        raise InputError(
            f"{token.symbol} reads an external oracle ({token.oracle}); it has no custom price",
            code="not_custom_oracle",
        )
    perpool = await fetch_decoded(client, "Perpool", pda.perpool())
    if perpool is None:
        raise PerpoolError("the program is not initialized", code="not_initialized")
    if perpool.oracle_authority != authority.pubkey():
        raise InputError(
            f"{authority.pubkey()} is not the oracle authority ({perpool.oracle_authority})",
            code="not_oracle_authority",
        )
    try:
        price, expo = parse_oracle_price(price_text, "price")
        ema = price
        if ema_text is not None:
            ema = to_base_units(ema_text, -expo, "--ema")
        conf = to_base_units(conf_text or "0", -expo, "--conf", allow_zero=True)
    except AmountError as exc:
        raise InputError(str(exc), code="invalid_amount") from exc
    oracle = await fetch_decoded(client, "CustomOracle", keys.oracle)
    last = oracle.publish_time if oracle is not None else 0
    now = await chain_now(client)
    deadline = time.monotonic() + CLOCK_WAIT_SECONDS
    while now <= last and time.monotonic() < deadline:
        if status:
            status("waiting for the chain clock to pass the last publish time")
        await asyncio.sleep(0.2)
        now = await chain_now(client)
    ix = client.set_price_ix(
        ex.pool_name,
        token.mint,
        authority.pubkey(),
        price=price,
        expo=expo,
        conf=conf,
        ema=ema,
        publish_time=now,
    )
    outcome = await run(client, [ix], [authority], simulate=simulate, status=status)
    return ActionResult(
        {
            "symbol": token.symbol,
            "price": oracle_price(price, expo),
            "emaPrice": oracle_price(ema, expo),
            "conf": oracle_price(conf, expo),
            "expo": expo,
            "publishTime": now,
            "oracle": str(keys.oracle),
        },
        outcome,
    )
