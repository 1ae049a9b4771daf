"""The user's token accounts: which one pays, which one receives, and balance checks."""

from __future__ import annotations

from solana.rpc.commitment import Confirmed
from solana.rpc.types import TokenAccountOpts
from solders.instruction import Instruction
from solders.pubkey import Pubkey
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
)

from perpool.amounts import format_units
from perpool.client import PerpoolClient
from perpool.errors import InputError

FEE_RESERVE_LAMPORTS = 10_000
"""Lamports a signer needs at least, for the signature fees of a transaction or two."""


async def token_balance(client: PerpoolClient, account: Pubkey) -> int | None:
    """Base units held by a token account, None if it does not exist."""
    info = (await client.connection.get_account_info(account, Confirmed)).value
    if info is None:
        return None
    return int((await client.connection.get_token_account_balance(account, Confirmed)).value.amount)


async def wallet_balance(client: PerpoolClient, owner: Pubkey, mint: Pubkey) -> int:
    """Sum over every token account of ``owner`` for ``mint``."""
    resp = await client.connection.get_token_accounts_by_owner(
        owner, TokenAccountOpts(mint=mint), Confirmed
    )
    total = 0
    for keyed in resp.value:
        total += int(
            (
                await client.connection.get_token_account_balance(keyed.pubkey, Confirmed)
            ).value.amount
        )
    return total


async def paying_account(
    client: PerpoolClient, owner: Pubkey, mint: Pubkey, amount: int, symbol: str, decimals: int
) -> Pubkey:
    """The owner's token account that pays ``amount``: the associated one, else the richest.

    Raises :class:`InputError` when there is none or it holds too little.
    """
    ata = get_associated_token_address(owner, mint)
    candidates = [ata]
    resp = await client.connection.get_token_accounts_by_owner(
        owner, TokenAccountOpts(mint=mint), Confirmed
    )
    candidates += [k.pubkey for k in resp.value if k.pubkey != ata]
    best: tuple[int, Pubkey] | None = None
    for account in candidates:
        balance = await token_balance(client, account)
        if balance is None:
            continue
        if balance >= amount:
            return account
        if best is None or balance > best[0]:
            best = (balance, account)
    if best is None:
        raise InputError(
            f"{owner} has no {symbol} token account",
            code="missing_token_account",
            symbol=symbol,
            owner=str(owner),
        )
    raise InputError(
        f"insufficient {symbol}: {owner} holds {format_units(best[0], decimals)}, "
        f"needs {format_units(amount, decimals)}",
        code="insufficient_balance",
        symbol=symbol,
        balance=format_units(best[0], decimals),
        required=format_units(amount, decimals),
    )


def receiving_account(payer: Pubkey, owner: Pubkey, mint: Pubkey) -> tuple[Pubkey, Instruction]:
    """The owner's associated token account and an instruction creating it if missing."""
    return (
        get_associated_token_address(owner, mint),
        create_idempotent_associated_token_account(payer, owner, mint),
    )


async def require_fee_balance(client: PerpoolClient, payer: Pubkey) -> None:
    lamports = (await client.connection.get_balance(payer, Confirmed)).value
    if lamports < FEE_RESERVE_LAMPORTS:
        raise InputError(
            f"{payer} has {format_units(lamports, 9)} SOL, not enough for transaction fees",
            code="insufficient_balance",
            symbol="SOL (native)",
        )
