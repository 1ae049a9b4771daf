"""SPL Token (and Token-2022, ATA) through solana-py's AsyncToken client."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Funder
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.types import TokenAccountOpts, TxOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address
from support import MINT_SIZE, TOKEN_ACCOUNT_SIZE, balance, token_amount

CONFIRM = TxOpts(skip_confirmation=False, preflight_commitment=Confirmed)


@pytest.mark.parametrize(
    "token_program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID], ids=["spl-token", "token-2022"]
)
async def test_mint_ata_mint_to_transfer(
    client: AsyncClient, funded: Funder, token_program: Pubkey
) -> None:
    payer = await funded()
    alice, bob = Keypair(), Keypair()
    mint_authority = payer  # solana-py's AsyncToken.mint_to signs with the payer only

    token = await AsyncToken.create_mint(
        client, payer, mint_authority.pubkey(), 6, token_program, freeze_authority=None
    )
    mint_account = (await client.get_account_info(token.pubkey, Confirmed)).value
    assert mint_account is not None
    assert mint_account.owner == token_program
    assert len(mint_account.data) == MINT_SIZE

    alice_ata = await token.create_associated_token_account(alice.pubkey())
    bob_ata = await token.create_associated_token_account(bob.pubkey())
    assert alice_ata == get_associated_token_address(alice.pubkey(), token.pubkey, token_program)
    assert bob_ata == get_associated_token_address(bob.pubkey(), token.pubkey, token_program)
    ata_account = (await client.get_account_info(alice_ata, Confirmed)).value
    assert ata_account is not None
    assert ata_account.owner == token_program
    assert len(ata_account.data) >= TOKEN_ACCOUNT_SIZE

    await token.mint_to(alice_ata, mint_authority, 1_000_000, opts=CONFIRM)
    assert await token_amount(client, alice_ata) == 1_000_000

    await token.transfer(alice_ata, bob_ata, alice, 250_000, opts=CONFIRM)
    assert await token_amount(client, alice_ata) == 750_000
    assert await token_amount(client, bob_ata) == 250_000

    mint_info = await token.get_mint_info()
    assert mint_info.supply == 1_000_000
    assert mint_info.decimals == 6
    assert mint_info.mint_authority == mint_authority.pubkey()
    assert mint_info.is_initialized

    alice_info = await token.get_account_info(alice_ata)
    assert alice_info.owner == alice.pubkey()
    assert alice_info.mint == token.pubkey
    assert alice_info.amount == 750_000

    ui = (await client.get_token_account_balance(bob_ata, Confirmed)).value
    assert ui.decimals == 6
    assert ui.ui_amount_string == "0.25"

    # Alice never held SOL: the payer paid the fees and rent, she only signed.
    assert await balance(client, alice.pubkey()) == 0


async def test_token_accounts_by_owner(client: AsyncClient, funded: Funder) -> None:
    payer = await funded()
    owner = Keypair()
    mint_authority = payer  # solana-py's AsyncToken.mint_to signs with the payer only
    token_a = await AsyncToken.create_mint(
        client, payer, mint_authority.pubkey(), 0, TOKEN_PROGRAM_ID
    )
    token_b = await AsyncToken.create_mint(
        client, payer, mint_authority.pubkey(), 9, TOKEN_PROGRAM_ID
    )
    ata_a = await token_a.create_associated_token_account(owner.pubkey())
    ata_b = await token_b.create_associated_token_account(owner.pubkey())
    await token_a.mint_to(ata_a, mint_authority, 42, opts=CONFIRM)

    by_program = await client.get_token_accounts_by_owner(
        owner.pubkey(), TokenAccountOpts(program_id=TOKEN_PROGRAM_ID), Confirmed
    )
    assert sorted(str(a.pubkey) for a in by_program.value) == sorted([str(ata_a), str(ata_b)])

    by_mint = await client.get_token_accounts_by_owner(
        owner.pubkey(), TokenAccountOpts(mint=token_a.pubkey), Confirmed
    )
    assert [a.pubkey for a in by_mint.value] == [ata_a]

    parsed = await client.get_token_accounts_by_owner_json_parsed(
        owner.pubkey(), TokenAccountOpts(mint=token_a.pubkey), Confirmed
    )
    assert len(parsed.value) == 1
    data = parsed.value[0].account.data
    parsed_data: Any = data.parsed
    info = parsed_data["info"]
    assert data.program == "spl-token"
    assert info["mint"] == str(token_a.pubkey)
    assert info["owner"] == str(owner.pubkey())
    assert info["tokenAmount"]["amount"] == "42"
    assert info["tokenAmount"]["decimals"] == 0


async def test_failed_token_transfer_is_rejected_without_side_effects(
    client: AsyncClient, funded: Funder
) -> None:
    payer = await funded()
    alice, bob = Keypair(), Keypair()
    mint_authority = payer  # solana-py's AsyncToken.mint_to signs with the payer only
    token = await AsyncToken.create_mint(
        client, payer, mint_authority.pubkey(), 2, TOKEN_PROGRAM_ID
    )
    alice_ata = await token.create_associated_token_account(alice.pubkey())
    bob_ata = await token.create_associated_token_account(bob.pubkey())
    await token.mint_to(alice_ata, mint_authority, 100, opts=CONFIRM)
    payer_before = await balance(client, payer.pubkey())

    with pytest.raises(RPCException) as excinfo:
        await token.transfer(alice_ata, bob_ata, alice, 101, opts=CONFIRM)
    err = excinfo.value.args[0]
    logs = err.data.logs
    assert any("insufficient funds" in line.lower() for line in logs), logs
    assert await token_amount(client, alice_ata) == 100
    assert await token_amount(client, bob_ata) == 0
    # A preflight failure never lands: no fee is charged.
    assert await balance(client, payer.pubkey()) == payer_before
