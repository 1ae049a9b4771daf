"""Localnet faucet: test tokens minted by the well-known test mint authority, plus native SOL
from the validator's airdrop.

Test mints (see :mod:`perpool.spec`) have a mint authority whose key anyone can derive, so this
works for every user without files; it is refused on anything but a perpool localnet.
"""

from __future__ import annotations

from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import MintToParams, mint_to

from perpool.amounts import format_units
from perpool.client import PerpoolClient
from perpool.errors import InputError, RpcUnreachable
from perpool.exchange import Exchange, parse_amount
from perpool.localnet import LocalnetError, LocalnetRpc, airdrop
from perpool.results import ActionResult
from perpool.spec import localnet_mint_authority
from perpool.txn import Status, run
from perpool.wallet import receiving_account

LAMPORTS_PER_SOL = 1_000_000_000
FEE_TOP_UP_BELOW = LAMPORTS_PER_SOL // 10
FEE_TOP_UP = LAMPORTS_PER_SOL
_METHOD_NOT_FOUND = -32601


async def is_localnet(url: str) -> bool:
    """True if ``url`` serves the localnet's time-control methods (probed with invalid
    parameters, so nothing changes: a localnet answers "invalid params", a cluster
    "method not found")."""
    try:
        async with LocalnetRpc(url) as rpc:
            answer = await rpc.request("localnet_warpSlots", [])
    except LocalnetError as exc:
        raise RpcUnreachable(str(exc)) from exc
    error = answer.get("error")
    return isinstance(error, dict) and error.get("code") != _METHOD_NOT_FOUND


async def require_localnet(url: str) -> None:
    if not await is_localnet(url):
        raise InputError(
            f"{url} is not a perpool localnet; the faucet works on localnet only",
            code="not_localnet",
        )


async def faucet(
    ex: Exchange,
    url: str,
    symbol: str,
    amount_text: str,
    recipient: Pubkey,
    *,
    sol_text: str | None = None,
    simulate: bool = False,
    status: Status | None = None,
) -> ActionResult:
    await require_localnet(url)
    token = ex.token(symbol)
    amount = parse_amount(amount_text, token.decimals, "amount")
    sol = parse_amount(sol_text, 9, "--sol") if sol_text else 0
    authority = localnet_mint_authority()
    info = (await ex.client.connection.get_account_info(token.mint, Confirmed)).value
    # SPL mint layout: COption<Pubkey> mint authority at 0..36.
    if info is None or bytes(info.data)[4:36] != bytes(authority.pubkey()):
        raise InputError(f"{token.symbol} is not a localnet test mint", code="not_test_mint")
    minter = PerpoolClient(ex.client.program, authority)
    conn = ex.client.connection
    # The authority pays the fees (and creates the recipient's token account).
    balance = (await conn.get_balance(authority.pubkey(), Confirmed)).value
    if not simulate and balance < FEE_TOP_UP_BELOW:
        await airdrop(conn, authority.pubkey(), FEE_TOP_UP)
    account, create = receiving_account(authority.pubkey(), recipient, token.mint)
    ix = mint_to(
        MintToParams(
            program_id=TOKEN_PROGRAM_ID,
            mint=token.mint,
            dest=account,
            mint_authority=authority.pubkey(),
            amount=amount,
        )
    )
    outcome = await run(minter, [create, ix], simulate=simulate, status=status)
    sol_sent = 0
    if not simulate:
        lamports = (await conn.get_balance(recipient, Confirmed)).value
        top_up = sol or (FEE_TOP_UP if lamports < FEE_TOP_UP_BELOW else 0)
        if top_up:
            if status:
                status("airdropping SOL")
            await airdrop(conn, recipient, top_up)
            sol_sent = top_up
    return ActionResult(
        {
            "symbol": token.symbol,
            "amount": format_units(amount, token.decimals),
            "recipient": str(recipient),
            "tokenAccount": str(account),
            "solAirdropped": format_units(sol_sent, 9),
        },
        outcome,
    )
