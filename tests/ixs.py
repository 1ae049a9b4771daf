"""Unsent instructions for the trader actions (the client's ``trade`` module sends them at once),
so tests can put several in one transaction or send them expecting a failure."""

from __future__ import annotations

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from spl.token.constants import TOKEN_PROGRAM_ID

from perpool import pda
from perpool.client import PerpoolClient
from perpool.trade import Market, market_accounts, position_key, side_arg

MAX_PRICE = 2**63 - 1


def open_position_ix(
    client: PerpoolClient,
    owner: Pubkey,
    market: Market,
    *,
    collateral_amount: int,
    size_usd: int,
    funding_account: Pubkey,
    price_limit: int | None = None,
) -> Instruction:
    if price_limit is None:
        price_limit = MAX_PRICE if market.side == "long" else 0
    accounts = market_accounts(client, market)
    del accounts["transfer_authority"]
    accounts |= {
        "owner": owner,
        "funding_account": funding_account,
        "position": position_key(client, market, owner),
        "system_program": SYSTEM_PROGRAM_ID,
    }
    params = {
        "price": price_limit,
        "collateral_amount": collateral_amount,
        "size_usd": size_usd,
        "side": side_arg(client, market.side),
    }
    return client.ix("open_position", params, accounts=accounts)


def close_position_ix(
    client: PerpoolClient,
    owner: Pubkey,
    market: Market,
    *,
    receiving_account: Pubkey,
    close_bps: int = 10_000,
    price_limit: int | None = None,
) -> Instruction:
    if price_limit is None:
        price_limit = 0 if market.side == "long" else MAX_PRICE
    accounts = market_accounts(client, market) | {
        "owner": owner,
        "receiving_account": receiving_account,
        "position": position_key(client, market, owner),
    }
    return client.ix(
        "close_position", {"price": price_limit, "close_bps": close_bps}, accounts=accounts
    )


def add_collateral_ix(
    client: PerpoolClient, owner: Pubkey, market: Market, amount: int, *, funding_account: Pubkey
) -> Instruction:
    accounts = market_accounts(client, market)
    del accounts["transfer_authority"], accounts["custody_oracle"]
    accounts |= {
        "owner": owner,
        "funding_account": funding_account,
        "position": position_key(client, market, owner),
    }
    return client.ix("add_collateral", amount, accounts=accounts)


def remove_collateral_ix(
    client: PerpoolClient,
    owner: Pubkey,
    market: Market,
    collateral_usd: int,
    *,
    receiving_account: Pubkey,
) -> Instruction:
    accounts = market_accounts(client, market) | {
        "owner": owner,
        "receiving_account": receiving_account,
        "position": position_key(client, market, owner),
    }
    return client.ix("remove_collateral", collateral_usd, accounts=accounts)


def liquidate_ix(
    client: PerpoolClient,
    liquidator: Pubkey,
    market: Market,
    position_owner: Pubkey,
    *,
    receiving_account: Pubkey,
    owner_receiving_account: Pubkey,
) -> Instruction:
    accounts = market_accounts(client, market) | {
        "signer": liquidator,
        "receiving_account": receiving_account,
        "owner_receiving_account": owner_receiving_account,
        "owner": position_owner,
        "position": position_key(client, market, position_owner),
    }
    return client.ix("liquidate", accounts=accounts)


def swap_ix(
    client: PerpoolClient,
    owner: Pubkey,
    pool_name: str,
    mint_in: Pubkey,
    mint_out: Pubkey,
    amount_in: int,
    *,
    funding_account: Pubkey,
    receiving_account: Pubkey,
    min_amount_out: int = 0,
) -> Instruction:
    src = client.custody_keys(pool_name, mint_in)
    dst = client.custody_keys(pool_name, mint_out)
    accounts = {
        "owner": owner,
        "funding_account": funding_account,
        "receiving_account": receiving_account,
        "transfer_authority": pda.transfer_authority(),
        "perpool": pda.perpool(),
        "pool": src.pool,
        "receiving_custody": src.custody,
        "receiving_custody_oracle": src.oracle,
        "receiving_custody_token_account": src.token_account,
        "dispensing_custody": dst.custody,
        "dispensing_custody_oracle": dst.oracle,
        "dispensing_custody_token_account": dst.token_account,
        "token_program": TOKEN_PROGRAM_ID,
    }
    params = {"amount_in": amount_in, "min_amount_out": min_amount_out}
    return client.ix("swap", params, accounts=accounts)
