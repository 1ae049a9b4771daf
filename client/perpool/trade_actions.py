"""Trading in human units: open, close, change collateral, swap, and quotes of each from the
program's own views.

Sizes are USD (6 decimals on chain); ``--units`` sizes a position in units of the traded
asset at its oracle price (payoff markets will give units their own meaning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpool import pda, trade, views
from perpool.amounts import (
    BPS,
    USD_DECIMALS,
    AmountError,
    bps_to_ratio,
    format_units,
    parse_bps_fraction,
    price_9dp,
    usd,
)
from perpool.errors import InputError
from perpool.exchange import Exchange, Token, fetch_decoded, parse_amount, view_or_fail
from perpool.results import ActionResult
from perpool.trade import LONG, SHORT, Market
from perpool.txn import Status, run
from perpool.wallet import paying_account, receiving_account, require_fee_balance

DEFAULT_SLIPPAGE_BPS = 50
_LEVERAGE_ITERATIONS = 4


@dataclass(frozen=True)
class Sizing:
    """Exactly one of: USD size, target leverage, units of the asset (human strings)."""

    size_usd: str | None = None
    leverage: str | None = None
    units: str | None = None


def check_side(side: str) -> str:
    if side not in (LONG, SHORT):
        raise InputError(f"side must be 'long' or 'short', not {side!r}")
    return side


def check_slippage(bps: int) -> int:
    if not 0 <= bps < BPS:
        raise InputError(f"slippage must be between 0 and 9999 bps, got {bps}")
    return bps


def market_for(ex: Exchange, token: Token, side: str, collateral_symbol: str | None) -> Market:
    """The market of a new position; a long posts the traded token, a short a stable one, and
    both sides of a synthetic payoff market a stable one."""
    if token.stable:
        raise InputError(
            f"{token.symbol} is a stable token and cannot be traded", code="invalid_market"
        )
    synthetic = type(token.account.payoff.kind).__name__.lower() != "spot"
    if side == LONG and not synthetic:
        if collateral_symbol and ex.token(collateral_symbol).mint != token.mint:
            raise InputError(
                f"a long {token.symbol} position takes {token.symbol} as collateral, "
                f"not {collateral_symbol}",
                code="invalid_market",
            )
        return Market.long(ex.pool_name, token.mint)
    if collateral_symbol:
        collateral = ex.token(collateral_symbol)
        if not collateral.stable:
            raise InputError(
                f"a short takes a stable token as collateral; {collateral.symbol} is not one",
                code="invalid_market",
            )
    else:
        stables = ex.stable_tokens()
        if not stables:
            raise InputError("the pool has no stable token to short against", code="invalid_market")
        collateral = stables[0]
    if synthetic:
        return Market.payoff(ex.pool_name, token.mint, collateral.mint, side)
    return Market.short(ex.pool_name, token.mint, collateral.mint)


def _token_of(ex: Exchange, mint: Pubkey) -> Token:
    return next(t for t in ex.tokens if t.mint == mint)


async def _existing_position(
    ex: Exchange, token: Token, side: str, owner: Pubkey
) -> tuple[Market, Any]:
    """The owner's position on ``token``/``side`` and its market (collateral from the account)."""
    # The position's address does not depend on its collateral custody.
    key = pda.position(owner, ex.pool_key, token.custody, side)
    position = await fetch_decoded(ex.client, "Position", key)
    if position is None:
        raise InputError(
            f"{owner} has no {side} {token.symbol} position", code="no_position", position=str(key)
        )
    collateral = next(t for t in ex.tokens if t.custody == position.collateral_custody)
    return Market(ex.pool_name, token.mint, collateral.mint, side), position


def _limit(price: int, slippage_bps: int, up: bool) -> int:
    if up:
        return -(-price * (BPS + slippage_bps) // BPS)
    return price * (BPS - slippage_bps) // BPS


async def _entry_quote(ex: Exchange, market: Market, collateral: int, size: int) -> Any:
    return await view_or_fail(
        ex.client, views.entry_price_and_fee(ex.client, market, collateral, size)
    )


async def _size_for(
    ex: Exchange, token: Token, market: Market, collateral_amount: int, sizing: Sizing
) -> int:
    if sizing.size_usd is not None:
        return parse_amount(sizing.size_usd, USD_DECIMALS, "--size")
    if sizing.units is not None:
        units = parse_amount(sizing.units, token.decimals, "--units")
        price = await view_or_fail(
            ex.client, views.oracle_price(ex.client, ex.pool_name, token.mint, token.oracle)
        )
        size = units * price.price_usd_e9 // (10**token.decimals * 1000)
        if size == 0:
            raise InputError(f"--units {sizing.units} is worth less than $0.000001")
        return int(size)
    assert sizing.leverage is not None
    try:
        target = parse_amount(sizing.leverage, 4, "--leverage")
    except InputError as exc:
        raise InputError(str(exc), code="invalid_leverage") from exc
    _check_leverage(token, target)
    # The open fee comes out of the collateral and grows with the size: iterate to the size
    # whose leverage (size / net collateral) is the target, then never above it.
    quote = await _entry_quote(ex, market, collateral_amount, 1)
    size = max(1, quote.collateral_usd * target // BPS)
    for _ in range(_LEVERAGE_ITERATIONS):
        quote = await _entry_quote(ex, market, collateral_amount, size)
        size = max(1, quote.collateral_usd * target // BPS)
    quote = await _entry_quote(ex, market, collateral_amount, size)
    while quote.leverage_bps > target and size > 1:
        size = size * target // quote.leverage_bps
        quote = await _entry_quote(ex, market, collateral_amount, size)
    return int(size)


def _check_leverage(token: Token, leverage_bps: int) -> None:
    pricing = token.account.pricing
    if leverage_bps > pricing.max_initial_leverage:
        raise InputError(
            f"leverage {bps_to_ratio(leverage_bps)}x exceeds the maximum "
            f"{bps_to_ratio(pricing.max_initial_leverage)}x for {token.symbol}",
            code="leverage_too_high",
        )
    if leverage_bps < pricing.min_initial_leverage:
        raise InputError(
            f"leverage {bps_to_ratio(leverage_bps)}x is below the minimum "
            f"{bps_to_ratio(pricing.min_initial_leverage)}x for {token.symbol}",
            code="leverage_too_low",
        )


async def _prepare_open(
    ex: Exchange,
    symbol: str,
    side: str,
    collateral_text: str,
    collateral_symbol: str | None,
    sizing: Sizing,
) -> tuple[Token, Token, Market, int, int, Any]:
    token = ex.token(symbol)
    market = market_for(ex, token, check_side(side), collateral_symbol)
    collateral = _token_of(ex, market.collateral_mint)
    amount = parse_amount(collateral_text, collateral.decimals, "--collateral")
    size = await _size_for(ex, token, market, amount, sizing)
    quote = await _entry_quote(ex, market, amount, size)
    _check_leverage(token, quote.leverage_bps)
    return token, collateral, market, amount, size, quote


def _open_fields(
    token: Token, collateral: Token, side: str, amount: int, size: int, quote: Any
) -> dict[str, Any]:
    return {
        "symbol": token.symbol,
        "side": side,
        "collateralToken": collateral.symbol,
        "collateral": format_units(amount, collateral.decimals),
        "sizeUsd": usd(size),
        "entryPriceUsd": price_9dp(quote.entry_price),
        # Slippage included in the entry price, as a fraction of the oracle price.
        "priceImpact": format_units(quote.price_impact, 9),
        "feeUsd": usd(quote.fee_usd),
        "collateralUsd": usd(quote.collateral_usd),
        "leverage": bps_to_ratio(quote.leverage_bps),
        "liquidationPriceUsd": price_9dp(quote.liquidation_price),
    }


async def quote_open(
    ex: Exchange,
    symbol: str,
    side: str,
    *,
    collateral_text: str,
    collateral_symbol: str | None = None,
    sizing: Sizing,
) -> ActionResult:
    token, collateral, _market, amount, size, quote = await _prepare_open(
        ex, symbol, side, collateral_text, collateral_symbol, sizing
    )
    return ActionResult(_open_fields(token, collateral, side, amount, size, quote))


async def open_position(
    ex: Exchange,
    owner: Keypair,
    symbol: str,
    side: str,
    *,
    collateral_text: str,
    collateral_symbol: str | None = None,
    sizing: Sizing,
    slippage_bps: int = DEFAULT_SLIPPAGE_BPS,
    simulate: bool = False,
    status: Status | None = None,
) -> ActionResult:
    client = ex.client
    check_slippage(slippage_bps)
    token, collateral, market, amount, size, quote = await _prepare_open(
        ex, symbol, side, collateral_text, collateral_symbol, sizing
    )
    position = trade.position_key(client, market, owner.pubkey())
    if await fetch_decoded(client, "Position", position) is not None:
        raise InputError(
            f"{owner.pubkey()} already has a {side} {token.symbol} position; "
            "add collateral to it or close it first",
            code="position_exists",
        )
    await require_fee_balance(client, client.payer.pubkey())
    funding = await paying_account(
        client, owner.pubkey(), collateral.mint, amount, collateral.symbol, collateral.decimals
    )
    limit = _limit(quote.entry_price, slippage_bps, up=side == LONG)
    ix = trade.open_position_ix(
        client,
        owner.pubkey(),
        market,
        collateral_amount=amount,
        size_usd=size,
        funding_account=funding,
        price_limit=limit,
    )
    outcome = await run(client, [ix], [owner], simulate=simulate, status=status)
    fields = _open_fields(token, collateral, side, amount, size, quote)
    event = outcome.event("PositionOpened") or {}
    if "price" in event:
        fields["entryPriceUsd"] = price_9dp(int(event["price"]))
    fields |= {"priceLimitUsd": price_9dp(limit), "position": str(position)}
    return ActionResult(fields, outcome)


async def quote_close(
    ex: Exchange, owner: Pubkey, symbol: str, side: str, *, fraction: str = "1"
) -> ActionResult:
    token = ex.token(symbol)
    market, _position = await _existing_position(ex, token, check_side(side), owner)
    close_bps = _fraction(fraction)
    quote = await view_or_fail(
        ex.client, views.exit_price_and_fee(ex.client, market, owner, close_bps)
    )
    return ActionResult(_close_fields(ex, token, market, side, close_bps, quote))


def _fraction(text: str) -> int:
    try:
        return parse_bps_fraction(text, "--fraction")
    except AmountError as exc:
        raise InputError(str(exc), code="invalid_amount") from exc


def _close_fields(
    ex: Exchange, token: Token, market: Market, side: str, close_bps: int, quote: Any
) -> dict[str, Any]:
    collateral = _token_of(ex, market.collateral_mint)
    return {
        "symbol": token.symbol,
        "side": side,
        "fraction": bps_to_ratio(close_bps),
        "exitPriceUsd": price_9dp(quote.exit_price),
        "priceImpact": format_units(quote.price_impact, 9),
        "sizeUsd": usd(quote.size_usd),
        "profitUsd": usd(quote.profit_usd),
        "lossUsd": usd(quote.loss_usd),
        "closeFeeUsd": usd(quote.close_fee_usd),
        "borrowFeeUsd": usd(quote.borrow_fee_usd),
        "fundingFeeUsd": usd(quote.funding_paid_usd - quote.funding_received_usd),
        "payoutUsd": usd(quote.payout_usd),
        "payoutToken": collateral.symbol,
        "payout": format_units(quote.payout_amount, collateral.decimals),
    }


async def close_position(
    ex: Exchange,
    owner: Keypair,
    symbol: str,
    side: str,
    *,
    fraction: str = "1",
    slippage_bps: int = DEFAULT_SLIPPAGE_BPS,
    simulate: bool = False,
    status: Status | None = None,
) -> ActionResult:
    client = ex.client
    check_slippage(slippage_bps)
    token = ex.token(symbol)
    market, _position = await _existing_position(ex, token, check_side(side), owner.pubkey())
    close_bps = _fraction(fraction)
    quote = await view_or_fail(
        client, views.exit_price_and_fee(client, market, owner.pubkey(), close_bps)
    )
    await require_fee_balance(client, client.payer.pubkey())
    receiving, create = receiving_account(
        client.payer.pubkey(), owner.pubkey(), market.collateral_mint
    )
    limit = _limit(quote.exit_price, slippage_bps, up=side == SHORT)
    ix = trade.close_position_ix(
        client,
        owner.pubkey(),
        market,
        receiving_account=receiving,
        close_bps=close_bps,
        price_limit=limit,
    )
    outcome = await run(client, [create, ix], [owner], simulate=simulate, status=status)
    fields = _close_fields(ex, token, market, side, close_bps, quote)
    event = outcome.event("PositionClosed") or {}
    collateral = _token_of(ex, market.collateral_mint)
    if "payoutAmount" in event:
        fields["payout"] = format_units(int(event["payoutAmount"]), collateral.decimals)
    if "exitPrice" in event:
        fields["exitPriceUsd"] = price_9dp(int(event["exitPrice"]))
    fields |= {"priceLimitUsd": price_9dp(limit), "receivingAccount": str(receiving)}
    return ActionResult(fields, outcome)


async def add_collateral(
    ex: Exchange,
    owner: Keypair,
    symbol: str,
    side: str,
    amount_text: str,
    *,
    simulate: bool = False,
    status: Status | None = None,
) -> ActionResult:
    client = ex.client
    token = ex.token(symbol)
    market, _position = await _existing_position(ex, token, check_side(side), owner.pubkey())
    collateral = _token_of(ex, market.collateral_mint)
    amount = parse_amount(amount_text, collateral.decimals, "amount")
    await require_fee_balance(client, client.payer.pubkey())
    funding = await paying_account(
        client, owner.pubkey(), collateral.mint, amount, collateral.symbol, collateral.decimals
    )
    ix = trade.add_collateral_ix(client, owner.pubkey(), market, amount, funding_account=funding)
    outcome = await run(client, [ix], [owner], simulate=simulate, status=status)
    return ActionResult(
        _collateral_fields(token, collateral, side, outcome.event("CollateralChanged"))
        | {"amount": format_units(amount, collateral.decimals)},
        outcome,
    )


async def remove_collateral(
    ex: Exchange,
    owner: Keypair,
    symbol: str,
    side: str,
    usd_text: str,
    *,
    simulate: bool = False,
    status: Status | None = None,
) -> ActionResult:
    """Withdraws collateral worth ``usd_text`` USD (the program's unit for removal)."""
    client = ex.client
    token = ex.token(symbol)
    market, _position = await _existing_position(ex, token, check_side(side), owner.pubkey())
    collateral = _token_of(ex, market.collateral_mint)
    amount_usd = parse_amount(usd_text, USD_DECIMALS, "amount (USD)")
    await require_fee_balance(client, client.payer.pubkey())
    receiving, create = receiving_account(client.payer.pubkey(), owner.pubkey(), collateral.mint)
    ix = trade.remove_collateral_ix(
        client, owner.pubkey(), market, amount_usd, receiving_account=receiving
    )
    outcome = await run(client, [create, ix], [owner], simulate=simulate, status=status)
    event = outcome.event("CollateralChanged")
    fields = _collateral_fields(token, collateral, side, event) | {"amountUsd": usd(amount_usd)}
    if event and "amount" in event:
        fields["amount"] = format_units(int(event["amount"]), collateral.decimals)
    return ActionResult(fields, outcome)


def _collateral_fields(
    token: Token, collateral: Token, side: str, event: dict[str, Any] | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "symbol": token.symbol,
        "side": side,
        "collateralToken": collateral.symbol,
    }
    if event and "collateralUsd" in event:
        fields["positionCollateralUsd"] = usd(int(event["collateralUsd"]))
    return fields


async def _swap_quote(ex: Exchange, src: Token, dst: Token, amount: int) -> Any:
    if src.mint == dst.mint:
        raise InputError(f"cannot swap {src.symbol} for itself")
    return await view_or_fail(
        ex.client, views.swap_amount_and_fees(ex.client, ex.pool_name, src.mint, dst.mint, amount)
    )


def _swap_fields(src: Token, dst: Token, amount: int, quote: Any) -> dict[str, Any]:
    return {
        "from": src.symbol,
        "to": dst.symbol,
        "amountIn": format_units(amount, src.decimals),
        "amountOut": format_units(quote.amount_out, dst.decimals),
        "fee": format_units(quote.fee_amount, dst.decimals),
        "valueUsd": usd(quote.value_usd),
    }


async def quote_swap(
    ex: Exchange, from_symbol: str, to_symbol: str, amount_text: str
) -> ActionResult:
    src, dst = ex.token(from_symbol), ex.token(to_symbol)
    amount = parse_amount(amount_text, src.decimals, "amount")
    return ActionResult(_swap_fields(src, dst, amount, await _swap_quote(ex, src, dst, amount)))


async def swap(
    ex: Exchange,
    owner: Keypair,
    from_symbol: str,
    to_symbol: str,
    amount_text: str,
    *,
    min_out_text: str | None = None,
    slippage_bps: int = DEFAULT_SLIPPAGE_BPS,
    simulate: bool = False,
    status: Status | None = None,
) -> ActionResult:
    client = ex.client
    check_slippage(slippage_bps)
    src, dst = ex.token(from_symbol), ex.token(to_symbol)
    amount = parse_amount(amount_text, src.decimals, "amount")
    min_out = (
        parse_amount(min_out_text, dst.decimals, "--min-out", allow_zero=True)
        if min_out_text
        else None
    )
    await require_fee_balance(client, client.payer.pubkey())
    funding = await paying_account(
        client, owner.pubkey(), src.mint, amount, src.symbol, src.decimals
    )
    quote = await _swap_quote(ex, src, dst, amount)
    if min_out is None:
        min_out = quote.amount_out * (BPS - slippage_bps) // BPS
    receiving, create = receiving_account(client.payer.pubkey(), owner.pubkey(), dst.mint)
    ix = trade.swap_ix(
        client,
        owner.pubkey(),
        ex.pool_name,
        src.mint,
        dst.mint,
        amount,
        funding_account=funding,
        receiving_account=receiving,
        min_amount_out=min_out,
    )
    outcome = await run(client, [create, ix], [owner], simulate=simulate, status=status)
    fields = _swap_fields(src, dst, amount, quote)
    event = outcome.event("Swapped") or {}
    if "amountOut" in event:
        fields["amountOut"] = format_units(int(event["amountOut"]), dst.decimals)
    fields |= {
        "minAmountOut": format_units(min_out, dst.decimals),
        "receivingAccount": str(receiving),
    }
    return ActionResult(fields, outcome)
