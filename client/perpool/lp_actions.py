"""Liquidity in human units: deposit a pool token for LP tokens, withdraw LP tokens for one,
and quotes of both from the program's own views."""

from __future__ import annotations

from solders.keypair import Keypair

from perpool import lp, views
from perpool.amounts import BPS, LP_DECIMALS, format_units, usd
from perpool.exchange import Exchange, parse_amount, view_or_fail
from perpool.results import ActionResult
from perpool.txn import Status, run
from perpool.wallet import paying_account, receiving_account, require_fee_balance

DEFAULT_SLIPPAGE_BPS = 50


def _min_out(expected: int, slippage_bps: int) -> int:
    return expected * (BPS - slippage_bps) // BPS


async def quote_deposit(ex: Exchange, symbol: str, amount_text: str) -> ActionResult:
    token = ex.token(symbol)
    amount = parse_amount(amount_text, token.decimals, "amount")
    quote = await view_or_fail(
        ex.client, views.add_liquidity_amount_and_fee(ex.client, ex.pool_name, token.mint, amount)
    )
    return ActionResult(
        {
            "symbol": token.symbol,
            "amount": format_units(amount, token.decimals),
            "lpAmount": format_units(quote.lp_amount, LP_DECIMALS),
            "fee": format_units(quote.fee_amount, token.decimals),
            "depositUsd": usd(quote.deposit_usd),
            "aumUsd": usd(quote.aum_usd),
        }
    )


async def quote_withdraw(ex: Exchange, symbol: str, lp_text: str) -> ActionResult:
    token = ex.token(symbol)
    lp_amount = parse_amount(lp_text, LP_DECIMALS, "LP amount")
    quote = await view_or_fail(
        ex.client,
        views.remove_liquidity_amount_and_fee(ex.client, ex.pool_name, token.mint, lp_amount),
    )
    return ActionResult(
        {
            "symbol": token.symbol,
            "lpAmount": format_units(lp_amount, LP_DECIMALS),
            "amountOut": format_units(quote.amount_out, token.decimals),
            "fee": format_units(quote.fee_amount, token.decimals),
            "withdrawUsd": usd(quote.withdraw_usd),
            "aumUsd": usd(quote.aum_usd),
        }
    )


async def deposit(
    ex: Exchange,
    owner: Keypair,
    symbol: str,
    amount_text: str,
    *,
    min_lp_text: str | None = None,
    slippage_bps: int = DEFAULT_SLIPPAGE_BPS,
    simulate: bool = False,
    status: Status | None = None,
) -> ActionResult:
    client = ex.client
    token = ex.token(symbol)
    amount = parse_amount(amount_text, token.decimals, "amount")
    min_lp = (
        parse_amount(min_lp_text, LP_DECIMALS, "--min-lp", allow_zero=True) if min_lp_text else None
    )
    await require_fee_balance(client, client.payer.pubkey())
    funding = await paying_account(
        client, owner.pubkey(), token.mint, amount, token.symbol, token.decimals
    )
    quote = await view_or_fail(
        client, views.add_liquidity_amount_and_fee(client, ex.pool_name, token.mint, amount)
    )
    if min_lp is None:
        min_lp = _min_out(quote.lp_amount, slippage_bps)
    lp_account, create_lp = receiving_account(client.payer.pubkey(), owner.pubkey(), ex.lp_mint)
    ix = await lp.add_liquidity_ix(
        client,
        owner.pubkey(),
        ex.pool_name,
        token.mint,
        amount,
        funding_account=funding,
        lp_token_account=lp_account,
        min_lp_amount_out=min_lp,
    )
    outcome = await run(client, [create_lp, ix], [owner], simulate=simulate, status=status)
    event = outcome.event("LiquidityAdded") or {}
    lp_out = int(event.get("lpAmount", quote.lp_amount))
    fee = int(event.get("feeAmount", quote.fee_amount))
    return ActionResult(
        {
            "symbol": token.symbol,
            "amount": format_units(amount, token.decimals),
            "lpAmount": format_units(lp_out, LP_DECIMALS),
            "minLpAmount": format_units(min_lp, LP_DECIMALS),
            "fee": format_units(fee, token.decimals),
            "lpTokenAccount": str(lp_account),
        },
        outcome,
    )


async def withdraw(
    ex: Exchange,
    owner: Keypair,
    symbol: str,
    lp_text: str,
    *,
    min_out_text: str | None = None,
    slippage_bps: int = DEFAULT_SLIPPAGE_BPS,
    simulate: bool = False,
    status: Status | None = None,
) -> ActionResult:
    client = ex.client
    token = ex.token(symbol)
    lp_amount = parse_amount(lp_text, LP_DECIMALS, "LP amount")
    min_out = (
        parse_amount(min_out_text, token.decimals, "--min-out", allow_zero=True)
        if min_out_text
        else None
    )
    await require_fee_balance(client, client.payer.pubkey())
    lp_account = await paying_account(
        client, owner.pubkey(), ex.lp_mint, lp_amount, "LP", LP_DECIMALS
    )
    quote = await view_or_fail(
        client, views.remove_liquidity_amount_and_fee(client, ex.pool_name, token.mint, lp_amount)
    )
    if min_out is None:
        min_out = _min_out(quote.amount_out, slippage_bps)
    receiving, create = receiving_account(client.payer.pubkey(), owner.pubkey(), token.mint)
    ix = await lp.remove_liquidity_ix(
        client,
        owner.pubkey(),
        ex.pool_name,
        token.mint,
        lp_amount,
        receiving_account=receiving,
        lp_token_account=lp_account,
        min_amount_out=min_out,
    )
    outcome = await run(client, [create, ix], [owner], simulate=simulate, status=status)
    event = outcome.event("LiquidityRemoved") or {}
    out = int(event.get("amountOut", quote.amount_out))
    fee = int(event.get("feeAmount", quote.fee_amount))
    return ActionResult(
        {
            "symbol": token.symbol,
            "lpAmount": format_units(lp_amount, LP_DECIMALS),
            "amountOut": format_units(out, token.decimals),
            "minAmountOut": format_units(min_out, token.decimals),
            "fee": format_units(fee, token.decimals),
            "receivingAccount": str(receiving),
        },
        outcome,
    )
