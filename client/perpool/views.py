"""The program's view instructions, simulated; results decoded from the return data."""

from __future__ import annotations

from typing import Any

from solders.pubkey import Pubkey

from perpool import pda
from perpool.client import PerpoolClient
from perpool.trade import Market, market_accounts, position_key, side_arg


def _position_view_accounts(
    client: PerpoolClient, market: Market, owner: Pubkey
) -> dict[str, Pubkey]:
    accounts = market_accounts(client, market)
    return {
        "perpool": accounts["perpool"],
        "pool": accounts["pool"],
        "position": position_key(client, market, owner),
        "custody": accounts["custody"],
        "custody_oracle": accounts["custody_oracle"],
        "collateral_custody": accounts["collateral_custody"],
        "collateral_custody_oracle": accounts["collateral_custody_oracle"],
    }


def _pair_accounts(
    client: PerpoolClient, pool_name: str, mint: Pubkey, other_mint: Pubkey
) -> dict[str, Pubkey]:
    a = client.custody_keys(pool_name, mint)
    b = client.custody_keys(pool_name, other_mint)
    return {
        "perpool": pda.perpool(),
        "pool": a.pool,
        "custody": a.custody,
        "custody_oracle": a.oracle,
        "other_custody": b.custody,
        "other_custody_oracle": b.oracle,
    }


async def entry_price_and_fee(
    client: PerpoolClient, market: Market, collateral_amount: int, size_usd: int
) -> Any:
    params = {
        "collateral_amount": collateral_amount,
        "size_usd": size_usd,
        "side": side_arg(client, market.side),
    }
    accounts = _pair_accounts(client, market.pool_name, market.mint, market.collateral_mint)
    return await client.view("get_entry_price_and_fee", params, accounts=accounts)


async def exit_price_and_fee(
    client: PerpoolClient, market: Market, owner: Pubkey, close_bps: int = 10_000
) -> Any:
    return await client.view(
        "get_exit_price_and_fee", close_bps, accounts=_position_view_accounts(client, market, owner)
    )


async def pnl(client: PerpoolClient, market: Market, owner: Pubkey) -> Any:
    return await client.view("get_pnl", accounts=_position_view_accounts(client, market, owner))


async def liquidation_price(client: PerpoolClient, market: Market, owner: Pubkey) -> int:
    result: int = await client.view(
        "get_liquidation_price", accounts=_position_view_accounts(client, market, owner)
    )
    return result


async def liquidation_state(client: PerpoolClient, market: Market, owner: Pubkey) -> bool:
    result: bool = await client.view(
        "get_liquidation_state", accounts=_position_view_accounts(client, market, owner)
    )
    return result


async def oracle_price(
    client: PerpoolClient, pool_name: str, mint: Pubkey, oracle: Pubkey | None = None
) -> Any:
    """The custody's validated price; ``oracle`` defaults to the account it is configured with."""
    keys = client.custody_keys(pool_name, mint)
    accounts = {
        "perpool": pda.perpool(),
        "pool": keys.pool,
        "custody": keys.custody,
        "custody_oracle": oracle or await client.custody_oracle(pool_name, mint),
        "lp_token_mint": pda.lp_token_mint(keys.pool),
    }
    return await client.view("get_oracle_price", accounts=accounts)


async def assets_under_management(client: PerpoolClient, pool_name: str) -> Any:
    pool_key = pda.pool(pool_name)
    accounts = {
        "perpool": pda.perpool(),
        "pool": pool_key,
        "lp_token_mint": pda.lp_token_mint(pool_key),
    }
    remaining = await client.pool_remaining_accounts(pool_name)
    return await client.view("get_assets_under_management", accounts=accounts, remaining=remaining)


async def _custody_view(
    client: PerpoolClient, name: str, pool_name: str, mint: Pubkey, amount: int
) -> Any:
    keys = client.custody_keys(pool_name, mint)
    accounts = {
        "perpool": pda.perpool(),
        "pool": keys.pool,
        "custody": keys.custody,
        "custody_oracle": await client.custody_oracle(pool_name, mint),
        "lp_token_mint": pda.lp_token_mint(keys.pool),
    }
    remaining = await client.pool_remaining_accounts(pool_name)
    return await client.view(name, amount, accounts=accounts, remaining=remaining)


async def add_liquidity_amount_and_fee(
    client: PerpoolClient, pool_name: str, mint: Pubkey, amount_in: int
) -> Any:
    return await _custody_view(
        client, "get_add_liquidity_amount_and_fee", pool_name, mint, amount_in
    )


async def remove_liquidity_amount_and_fee(
    client: PerpoolClient, pool_name: str, mint: Pubkey, lp_amount_in: int
) -> Any:
    return await _custody_view(
        client, "get_remove_liquidity_amount_and_fee", pool_name, mint, lp_amount_in
    )


async def swap_amount_and_fees(
    client: PerpoolClient, pool_name: str, mint_in: Pubkey, mint_out: Pubkey, amount_in: int
) -> Any:
    return await client.view(
        "get_swap_amount_and_fees",
        amount_in,
        accounts=_pair_accounts(client, pool_name, mint_in, mint_out),
    )


async def lp_token_price(client: PerpoolClient, pool_name: str) -> int:
    pool_key = pda.pool(pool_name)
    accounts = {
        "perpool": pda.perpool(),
        "pool": pool_key,
        "lp_token_mint": pda.lp_token_mint(pool_key),
    }
    remaining = await client.pool_remaining_accounts(pool_name)
    result: int = await client.view("get_lp_token_price", accounts=accounts, remaining=remaining)
    return result
