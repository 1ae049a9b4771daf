"""Liquidity provider instructions."""

from __future__ import annotations

from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.keypair import Keypair
from spl.token.constants import TOKEN_PROGRAM_ID

from perpool import pda
from perpool.client import PerpoolClient


def _lp_accounts(client: PerpoolClient, pool_name: str, mint: Pubkey, owner: Pubkey) -> dict[str, Pubkey]:
    keys = client.custody_keys(pool_name, mint)
    return {
        "owner": owner,
        "transfer_authority": pda.transfer_authority(),
        "perpool": pda.perpool(),
        "pool": keys.pool,
        "custody": keys.custody,
        "custody_oracle": keys.oracle,
        "custody_token_account": keys.token_account,
        "lp_token_mint": pda.lp_token_mint(keys.pool),
        "token_program": TOKEN_PROGRAM_ID,
    }


async def add_liquidity(
    client: PerpoolClient,
    owner: Keypair,
    pool_name: str,
    mint: Pubkey,
    amount_in: int,
    *,
    funding_account: Pubkey,
    lp_token_account: Pubkey,
    min_lp_amount_out: int = 0,
) -> Signature:
    accounts = _lp_accounts(client, pool_name, mint, owner.pubkey())
    accounts |= {"funding_account": funding_account, "lp_token_account": lp_token_account}
    remaining = await client.pool_remaining_accounts(pool_name)
    ix = client.ix(
        "add_liquidity",
        {"amount_in": amount_in, "min_lp_amount_out": min_lp_amount_out},
        accounts=accounts,
        remaining=remaining,
    )
    return await client.send([ix], [owner])


async def remove_liquidity(
    client: PerpoolClient,
    owner: Keypair,
    pool_name: str,
    mint: Pubkey,
    lp_amount_in: int,
    *,
    receiving_account: Pubkey,
    lp_token_account: Pubkey,
    min_amount_out: int = 0,
) -> Signature:
    accounts = _lp_accounts(client, pool_name, mint, owner.pubkey())
    accounts |= {"receiving_account": receiving_account, "lp_token_account": lp_token_account}
    remaining = await client.pool_remaining_accounts(pool_name)
    ix = client.ix(
        "remove_liquidity",
        {"lp_amount_in": lp_amount_in, "min_amount_out": min_amount_out},
        accounts=accounts,
        remaining=remaining,
    )
    return await client.send([ix], [owner])
