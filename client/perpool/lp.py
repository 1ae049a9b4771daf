"""Liquidity provider instructions.

Both take every custody of the pool and then their oracles as remaining accounts (the program
values the whole pool to price the LP token); the builders fetch them from the chain.
"""

from __future__ import annotations

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from spl.token.constants import TOKEN_PROGRAM_ID

from perpool import pda
from perpool.client import PerpoolClient


async def _lp_accounts(
    client: PerpoolClient, pool_name: str, mint: Pubkey, owner: Pubkey
) -> dict[str, Pubkey]:
    keys = client.custody_keys(pool_name, mint)
    return {
        "owner": owner,
        "transfer_authority": pda.transfer_authority(),
        "perpool": pda.perpool(),
        "pool": keys.pool,
        "custody": keys.custody,
        # The custody's configured oracle (its custom oracle PDA or a Pyth account).
        "custody_oracle": await client.custody_oracle(pool_name, mint),
        "custody_token_account": keys.token_account,
        "lp_token_mint": pda.lp_token_mint(keys.pool),
        "token_program": TOKEN_PROGRAM_ID,
    }


async def add_liquidity_ix(
    client: PerpoolClient,
    owner: Pubkey,
    pool_name: str,
    mint: Pubkey,
    amount_in: int,
    *,
    funding_account: Pubkey,
    lp_token_account: Pubkey,
    min_lp_amount_out: int = 0,
) -> Instruction:
    accounts = await _lp_accounts(client, pool_name, mint, owner)
    accounts |= {"funding_account": funding_account, "lp_token_account": lp_token_account}
    return client.ix(
        "add_liquidity",
        {"amount_in": amount_in, "min_lp_amount_out": min_lp_amount_out},
        accounts=accounts,
        remaining=await client.pool_remaining_accounts(pool_name),
    )


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
    ix = await add_liquidity_ix(
        client,
        owner.pubkey(),
        pool_name,
        mint,
        amount_in,
        funding_account=funding_account,
        lp_token_account=lp_token_account,
        min_lp_amount_out=min_lp_amount_out,
    )
    return await client.send([ix], [owner])


async def remove_liquidity_ix(
    client: PerpoolClient,
    owner: Pubkey,
    pool_name: str,
    mint: Pubkey,
    lp_amount_in: int,
    *,
    receiving_account: Pubkey,
    lp_token_account: Pubkey,
    min_amount_out: int = 0,
) -> Instruction:
    accounts = await _lp_accounts(client, pool_name, mint, owner)
    accounts |= {"receiving_account": receiving_account, "lp_token_account": lp_token_account}
    return client.ix(
        "remove_liquidity",
        {"lp_amount_in": lp_amount_in, "min_amount_out": min_amount_out},
        accounts=accounts,
        remaining=await client.pool_remaining_accounts(pool_name),
    )


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
    ix = await remove_liquidity_ix(
        client,
        owner.pubkey(),
        pool_name,
        mint,
        lp_amount_in,
        receiving_account=receiving_account,
        lp_token_account=lp_token_account,
        min_amount_out=min_amount_out,
    )
    return await client.send([ix], [owner])
