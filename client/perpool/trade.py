"""Trader instructions (unsent builders ``*_ix`` and senders that sign and confirm) and the
permissionless cranks."""

from __future__ import annotations

from dataclasses import dataclass

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from spl.token.constants import TOKEN_PROGRAM_ID

from perpool import pda
from perpool.client import PerpoolClient

LONG = "long"
SHORT = "short"


@dataclass(frozen=True)
class Market:
    """The accounts a position lives in: the traded custody and the collateral custody."""

    pool_name: str
    mint: Pubkey
    collateral_mint: Pubkey
    side: str

    @classmethod
    def long(cls, pool_name: str, mint: Pubkey) -> Market:
        return cls(pool_name, mint, mint, LONG)

    @classmethod
    def short(cls, pool_name: str, mint: Pubkey, stable_mint: Pubkey) -> Market:
        return cls(pool_name, mint, stable_mint, SHORT)

    @classmethod
    def payoff(cls, pool_name: str, mint: Pubkey, stable_mint: Pubkey, side: str) -> Market:
        """A side of a synthetic payoff market: both sides post collateral in a stable."""
        if side not in (LONG, SHORT):
            raise ValueError(f"side must be {LONG!r} or {SHORT!r}, not {side!r}")
        return cls(pool_name, mint, stable_mint, side)


def side_arg(client: PerpoolClient, side: str) -> object:
    side_type = client.program.type["Side"]
    return side_type.Long() if side == LONG else side_type.Short()


def position_key(client: PerpoolClient, market: Market, owner: Pubkey) -> Pubkey:
    keys = client.custody_keys(market.pool_name, market.mint)
    return pda.position(owner, keys.pool, keys.custody, market.side)


def market_accounts(client: PerpoolClient, market: Market) -> dict[str, Pubkey]:
    keys = client.custody_keys(market.pool_name, market.mint)
    collateral = client.custody_keys(market.pool_name, market.collateral_mint)
    return {
        "transfer_authority": pda.transfer_authority(),
        "perpool": pda.perpool(),
        "pool": keys.pool,
        "custody": keys.custody,
        "custody_oracle": keys.oracle,
        "collateral_custody": collateral.custody,
        "collateral_custody_oracle": collateral.oracle,
        "collateral_custody_token_account": collateral.token_account,
        "token_program": TOKEN_PROGRAM_ID,
    }


# ---- instruction builders (unsent) --------------------------------------------------------

MAX_PRICE = 2**63 - 1
"""No price limit: the widest limit a long can give (a short's is 0)."""


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


# ---- build, sign and send ------------------------------------------------------------------


async def open_position(
    client: PerpoolClient,
    owner: Keypair,
    market: Market,
    *,
    collateral_amount: int,
    size_usd: int,
    price_limit: int,
    funding_account: Pubkey,
) -> Signature:
    ix = open_position_ix(
        client,
        owner.pubkey(),
        market,
        collateral_amount=collateral_amount,
        size_usd=size_usd,
        funding_account=funding_account,
        price_limit=price_limit,
    )
    return await client.send([ix], [owner])


async def close_position(
    client: PerpoolClient,
    owner: Keypair,
    market: Market,
    *,
    price_limit: int,
    receiving_account: Pubkey,
    close_bps: int = 10_000,
) -> Signature:
    ix = close_position_ix(
        client,
        owner.pubkey(),
        market,
        receiving_account=receiving_account,
        close_bps=close_bps,
        price_limit=price_limit,
    )
    return await client.send([ix], [owner])


async def add_collateral(
    client: PerpoolClient, owner: Keypair, market: Market, amount: int, *, funding_account: Pubkey
) -> Signature:
    ix = add_collateral_ix(client, owner.pubkey(), market, amount, funding_account=funding_account)
    return await client.send([ix], [owner])


async def remove_collateral(
    client: PerpoolClient,
    owner: Keypair,
    market: Market,
    collateral_usd: int,
    *,
    receiving_account: Pubkey,
) -> Signature:
    ix = remove_collateral_ix(
        client, owner.pubkey(), market, collateral_usd, receiving_account=receiving_account
    )
    return await client.send([ix], [owner])


async def swap(
    client: PerpoolClient,
    owner: Keypair,
    pool_name: str,
    mint_in: Pubkey,
    mint_out: Pubkey,
    amount_in: int,
    *,
    funding_account: Pubkey,
    receiving_account: Pubkey,
    min_amount_out: int = 0,
) -> Signature:
    ix = swap_ix(
        client,
        owner.pubkey(),
        pool_name,
        mint_in,
        mint_out,
        amount_in,
        funding_account=funding_account,
        receiving_account=receiving_account,
        min_amount_out=min_amount_out,
    )
    return await client.send([ix], [owner])


async def liquidate(
    client: PerpoolClient,
    liquidator: Keypair,
    market: Market,
    position_owner: Pubkey,
    *,
    receiving_account: Pubkey,
    owner_receiving_account: Pubkey,
) -> Signature:
    ix = liquidate_ix(
        client,
        liquidator.pubkey(),
        market,
        position_owner,
        receiving_account=receiving_account,
        owner_receiving_account=owner_receiving_account,
    )
    return await client.send([ix], [liquidator])


async def accrue_borrow(client: PerpoolClient, pool_name: str, mint: Pubkey) -> Signature:
    keys = client.custody_keys(pool_name, mint)
    ix = client.ix("accrue_borrow", accounts={"pool": keys.pool, "custody": keys.custody})
    return await client.send([ix])


def update_funding_ix(client: PerpoolClient, pool_name: str, mint: Pubkey) -> Instruction:
    keys = client.custody_keys(pool_name, mint)
    return client.ix("update_funding", accounts={"pool": keys.pool, "custody": keys.custody})


async def update_funding(client: PerpoolClient, pool_name: str, mint: Pubkey) -> Signature:
    return await client.send([update_funding_ix(client, pool_name, mint)])


async def update_pool_aum(client: PerpoolClient, pool_name: str) -> Signature:
    remaining = await client.pool_remaining_accounts(pool_name)
    ix = client.ix("update_pool_aum", accounts={"pool": pda.pool(pool_name)}, remaining=remaining)
    return await client.send([ix])
