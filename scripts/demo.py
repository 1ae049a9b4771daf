"""Perpool demo: start a localnet, set up an exchange, provide liquidity, trade a 2x long, stop.

.venv/bin/python scripts/demo.py              # starts (and afterwards stops) its own localnet
.venv/bin/python scripts/demo.py --url URL    # uses a running localnet that is not initialized yet

Steps: ``init`` (1-of-1 admin multisig), a pool with SOL ($100) and USDC ($1) test mints, oracle
prices, a liquidity deposit, then a 2x long SOL (size $100, $50 of SOL collateral) closed after
SOL rises 20%: the trader receives $70 worth of SOL. Every transaction's events are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID

from perpool import lp, pda, trade, views
from perpool.client import PerpoolClient
from perpool.custody_config import custody_config
from perpool.localnet import (
    DEFAULT_PORT,
    LocalnetError,
    LocalnetProcess,
    LocalnetRpc,
    airdrop,
    ensure_validator,
    free_port,
    port_is_free,
)
from perpool.program import parse_events

LAMPORTS_PER_SOL = 1_000_000_000
POOL = "main"
SOL_DECIMALS, USDC_DECIMALS = 9, 6
USD = 10**6


def say(text: str) -> None:
    print(text, flush=True)


def usd(amount: int) -> str:
    return f"${amount / USD:,.6f}"


def sol(amount: int) -> str:
    return f"{amount / 10**SOL_DECIMALS:,.9f} SOL"


def usdc(amount: int) -> str:
    return f"{amount / 10**USDC_DECIMALS:,.6f} USDC"


async def show_events(client: PerpoolClient, sig: Signature) -> None:
    tx = await client.connection.get_transaction(
        sig, commitment=Confirmed, max_supported_transaction_version=0
    )
    meta = tx.value.transaction.meta if tx.value is not None else None
    logs = list(meta.log_messages or []) if meta is not None else []
    for event in parse_events(client.program, logs):
        fields = ", ".join(f"{k.rstrip('_')}={v}" for k, v in vars(event.data).items())
        say(f"    event {event.name}: {fields}")


async def token_balance(client: PerpoolClient, account: Pubkey) -> int:
    return int((await client.connection.get_token_account_balance(account, Confirmed)).value.amount)


async def chain_now(url: str) -> int:
    async with LocalnetRpc(url) as rpc:
        return (await rpc.get_clock("confirmed")).unix_timestamp


async def post_price(
    client: PerpoolClient, url: str, mint: Pubkey, price: int, expo: int, last: dict[Pubkey, int]
) -> Signature:
    """Posts a price as the oracle authority with a publish time that strictly increases."""
    now = await chain_now(url)
    while now <= last.get(mint, 0):
        await asyncio.sleep(0.2)
        now = await chain_now(url)
    last[mint] = now
    return await client.set_price(
        POOL, mint, client.payer, price=price, expo=expo, conf=0, ema=price, publish_time=now
    )


async def run_demo(url: str) -> None:
    admin = Keypair()
    client = PerpoolClient.connect(url, admin)
    try:
        await _run(client, url)
    finally:
        await client.close()


async def _run(client: PerpoolClient, url: str) -> None:
    conn = client.connection
    admin = client.payer
    version = (await conn.get_version()).value
    say(f"connected to {url} (solana-core {version.solana_core})")
    if (await conn.get_account_info(pda.perpool(), Confirmed)).value is not None:
        raise SystemExit("error: this localnet is already initialized; run the demo on a fresh one")
    await airdrop(conn, admin.pubkey(), 1_000 * LAMPORTS_PER_SOL)

    say("\n1. init: the global config and a 1-of-1 admin multisig (the admin also posts prices)")
    sig = await client.init([admin.pubkey()], 1, admin.pubkey())
    await show_events(client, sig)
    perpool = await client.fetch("Perpool", pda.perpool())
    say(
        f"    perpool {pda.perpool()}: oracle authority {perpool.oracle_authority}, "
        f"inception {perpool.inception_time}"
    )

    say(f"\n2. pool {POOL!r} with SOL and USDC test mints")
    sig = await client.add_pool(POOL, admin)
    await show_events(client, sig)
    mints: dict[str, AsyncToken] = {}
    for symbol, decimals, stable in (("SOL", SOL_DECIMALS, False), ("USDC", USDC_DECIMALS, True)):
        token = await AsyncToken.create_mint(
            conn, admin, admin.pubkey(), decimals, TOKEN_PROGRAM_ID
        )
        mints[symbol] = token
        config = custody_config(
            pda.custom_oracle(pda.pool(POOL), token.pubkey), client_types=client.program.type
        )
        sig = await client.add_custody(POOL, token.pubkey, stable, config, admin)
        say(
            f"    {symbol}: mint {token.pubkey} ({decimals} decimals), "
            f"custody {pda.custody(pda.pool(POOL), token.pubkey)}"
        )
        await show_events(client, sig)
    sol_mint, usdc_mint = mints["SOL"].pubkey, mints["USDC"].pubkey

    say("\n3. oracle prices: SOL $100, USDC $1")
    last: dict[Pubkey, int] = {}
    for mint, price, expo in ((sol_mint, 100_00, -2), (usdc_mint, 1_000_000, -6)):
        sig = await post_price(client, url, mint, price, expo, last)
        await show_events(client, sig)

    say("\n4. a liquidity provider deposits 100 SOL and 10,000 USDC")
    provider = Keypair()
    await airdrop(conn, provider.pubkey(), 10 * LAMPORTS_PER_SOL)
    provider_sol = await mints["SOL"].create_associated_token_account(provider.pubkey())
    provider_usdc = await mints["USDC"].create_associated_token_account(provider.pubkey())
    await _mint(client, mints["SOL"], provider_sol, 100 * 10**SOL_DECIMALS)
    await _mint(client, mints["USDC"], provider_usdc, 10_000 * 10**USDC_DECIMALS)
    lp_token = AsyncToken(conn, pda.lp_token_mint(pda.pool(POOL)), TOKEN_PROGRAM_ID, admin)
    provider_lp = await lp_token.create_associated_token_account(provider.pubkey())
    for mint, funding, amount in (
        (sol_mint, provider_sol, 100 * 10**SOL_DECIMALS),
        (usdc_mint, provider_usdc, 10_000 * 10**USDC_DECIMALS),
    ):
        sig = await lp.add_liquidity(
            client,
            provider,
            POOL,
            mint,
            amount,
            funding_account=funding,
            lp_token_account=provider_lp,
        )
        await show_events(client, sig)
    aum = await views.assets_under_management(client, POOL)
    say(
        f"    LP tokens: {await token_balance(client, provider_lp) / USD:,.6f}; "
        f"AUM {usd(aum.spot_usd)}; LP price {usd(aum.lp_price_usd)}"
    )

    say("\n5. a trader opens a 2x long SOL: size $100, collateral 0.5 SOL ($50)")
    trader = Keypair()
    await airdrop(conn, trader.pubkey(), 10 * LAMPORTS_PER_SOL)
    trader_sol = await mints["SOL"].create_associated_token_account(trader.pubkey())
    await _mint(client, mints["SOL"], trader_sol, 10**SOL_DECIMALS // 2)
    market = trade.Market.long(POOL, sol_mint)
    quote = await views.entry_price_and_fee(client, market, 10**SOL_DECIMALS // 2, 100 * USD)
    say(
        f"    quote: entry ${quote.entry_price / 10**9:,.2f}, fee {usd(quote.fee_usd)}, "
        f"leverage {quote.leverage_bps / 10_000:.2f}x, "
        f"liquidation ${quote.liquidation_price / 10**9:,.2f}"
    )
    sig = await trade.open_position(
        client,
        trader,
        market,
        collateral_amount=10**SOL_DECIMALS // 2,
        size_usd=100 * USD,
        price_limit=101 * 10**9,
        funding_account=trader_sol,
    )
    await show_events(client, sig)
    position = await client.fetch("Position", trade.position_key(client, market, trader.pubkey()))
    say(
        f"    position: size {usd(position.size_usd)}, collateral {usd(position.collateral_usd)}, "
        f"entry ${position.price / 10**9:,.2f}"
    )

    say("\n6. SOL rises 20% to $120")
    sig = await post_price(client, url, sol_mint, 120_00, -2, last)
    await post_price(client, url, usdc_mint, 1_000_000, -6, last)
    pnl: Any = await views.pnl(client, market, trader.pubkey())
    say(f"    unrealized profit {usd(pnl.profit_usd)}, loss {usd(pnl.loss_usd)}")

    say("\n7. the trader closes the position")
    before = await token_balance(client, trader_sol)
    sig = await trade.close_position(
        client, trader, market, price_limit=119 * 10**9, receiving_account=trader_sol
    )
    await show_events(client, sig)
    received = await token_balance(client, trader_sol) - before
    say(
        f"    received {sol(received)}, worth {usd(received * 120 // 1_000)} at $120: "
        "the $70 owed ($50 collateral + $20 profit)"
    )
    say("    paid in SOL, rounded down to the lamport in the pool's favour")

    aum = await views.assets_under_management(client, POOL)
    say(
        f"\npool AUM {usd(aum.spot_usd)}, LP supply {aum.lp_supply / USD:,.6f}, "
        f"LP price {usd(aum.lp_price_usd)}"
    )
    async with LocalnetRpc(url) as rpc:
        clock = await rpc.get_clock()
        say(f"chain clock: slot {clock.slot}, unix_timestamp {clock.unix_timestamp}")


async def _mint(client: PerpoolClient, token: AsyncToken, account: Pubkey, amount: int) -> None:
    sig = (await token.mint_to(account, client.payer, amount)).value
    await client.connection.confirm_transaction(sig, Confirmed, sleep_seconds=0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="use a running (fresh) localnet instead of starting one")
    args = parser.parse_args(argv)
    if args.url:
        asyncio.run(run_demo(args.url))
        return 0
    try:
        binary = ensure_validator()
    except LocalnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    port = DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()
    try:
        net = LocalnetProcess.start(binary=binary, port=port)
    except (LocalnetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with net:
        say(f"started {Path(binary).name} at {net.url} (ledger {net.ledger}, state in memory)")
        asyncio.run(run_demo(net.url))
    say("localnet stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
