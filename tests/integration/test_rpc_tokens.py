"""Token queries and ``jsonParsed`` account data (SPL Token, Token-2022, system nonce, sysvar)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Funder
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.types import TxOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import create_nonce_account
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import ApproveParams, approve
from support import send_and_confirm, signed_tx

from perpool.localnet import LocalnetRpc

INVALID_PARAMS = -32602
CONFIRM = TxOpts(skip_confirmation=False, preflight_commitment=Confirmed)
PROGRAM_NAMES = {TOKEN_PROGRAM_ID: "spl-token", TOKEN_2022_PROGRAM_ID: "spl-token-2022"}
UI_AMOUNT_KEYS = {"amount", "decimals", "uiAmount", "uiAmountString"}


async def error_of(rpc: LocalnetRpc, method: str, params: list[Any]) -> dict[str, Any]:
    body = await rpc.request(method, params)
    assert "error" in body, body
    return dict(body["error"])


async def token_setup(
    client: AsyncClient, funded: Funder, program: Pubkey
) -> tuple[AsyncToken, Keypair, list[tuple[Keypair, Pubkey]]]:
    payer = await funded()
    token = await AsyncToken.create_mint(
        client, payer, payer.pubkey(), 3, program, freeze_authority=payer.pubkey()
    )
    holders = []
    for amount in (5_000, 70_000, 600):
        owner = Keypair()
        ata = await token.create_associated_token_account(owner.pubkey())
        await token.mint_to(ata, payer, amount, opts=CONFIRM)
        holders.append((owner, ata))
    return token, payer, holders


@pytest.mark.parametrize("program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID], ids=["spl", "2022"])
async def test_json_parsed_token_accounts(
    client: AsyncClient, funded: Funder, rpc: LocalnetRpc, program: Pubkey
) -> None:
    token, payer, holders = await token_setup(client, funded, program)
    owner, ata = holders[0]
    answer = await rpc.call("getAccountInfo", [str(ata), {"encoding": "jsonParsed"}])
    data = answer["value"]["data"]
    assert data["program"] == PROGRAM_NAMES[program]
    assert data["parsed"]["type"] == "account"
    info = data["parsed"]["info"]
    assert info["mint"] == str(token.pubkey)
    assert info["owner"] == str(owner.pubkey())
    assert info["state"] == "initialized"
    assert info["isNative"] is False
    assert info["tokenAmount"] == {
        "amount": "5000",
        "decimals": 3,
        "uiAmount": 5.0,
        "uiAmountString": "5",
    }
    if program == TOKEN_2022_PROGRAM_ID:
        assert info["extensions"] == [{"extension": "immutableOwner"}]

    mint = await rpc.call("getAccountInfo", [str(token.pubkey), {"encoding": "jsonParsed"}])
    parsed = mint["value"]["data"]["parsed"]
    assert parsed["type"] == "mint"
    assert parsed["info"]["decimals"] == 3
    assert parsed["info"]["supply"] == "75600"
    assert parsed["info"]["mintAuthority"] == str(payer.pubkey())
    assert parsed["info"]["freezeAuthority"] == str(payer.pubkey())
    assert parsed["info"]["isInitialized"] is True

    supply = await rpc.call("getTokenSupply", [str(token.pubkey)])
    assert set(supply["value"]) == UI_AMOUNT_KEYS
    assert supply["value"]["amount"] == "75600"
    assert supply["value"]["uiAmountString"] == "75.6"


@pytest.mark.parametrize("program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID], ids=["spl", "2022"])
async def test_token_largest_accounts(
    client: AsyncClient, funded: Funder, rpc: LocalnetRpc, program: Pubkey
) -> None:
    token, _, holders = await token_setup(client, funded, program)
    answer = await rpc.call("getTokenLargestAccounts", [str(token.pubkey)])
    assert set(answer) == {"context", "value"}
    for entry in answer["value"]:
        assert set(entry) == {"address"} | UI_AMOUNT_KEYS
        assert entry["decimals"] == 3
    assert [(e["address"], e["amount"]) for e in answer["value"]] == [
        (str(holders[1][1]), "70000"),
        (str(holders[0][1]), "5000"),
        (str(holders[2][1]), "600"),
    ]
    assert answer["value"][0]["uiAmountString"] == "70"
    typed = (await client.get_token_largest_accounts(token.pubkey)).value
    assert typed[0].address == holders[1][1]

    error = await error_of(rpc, "getTokenLargestAccounts", [str(holders[0][1])])
    assert error == {"code": INVALID_PARAMS, "message": "Invalid param: not a Token mint"}
    error = await error_of(rpc, "getTokenLargestAccounts", [str(Keypair().pubkey())])
    assert error == {"code": INVALID_PARAMS, "message": "Invalid param: could not find account"}


async def test_token_accounts_by_delegate(
    client: AsyncClient, funded: Funder, rpc: LocalnetRpc
) -> None:
    token, payer, holders = await token_setup(client, funded, TOKEN_PROGRAM_ID)
    owner, ata = holders[1]
    delegate = Keypair()
    ix = approve(
        ApproveParams(
            program_id=TOKEN_PROGRAM_ID,
            source=ata,
            delegate=delegate.pubkey(),
            owner=owner.pubkey(),
            amount=1_234,
        )
    )
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    await send_and_confirm(client, signed_tx([ix], payer, blockhash, [owner]))

    answer = await rpc.call(
        "getTokenAccountsByDelegate",
        [str(delegate.pubkey()), {"mint": str(token.pubkey)}, {"encoding": "jsonParsed"}],
    )
    (entry,) = answer["value"]
    assert set(entry) == {"pubkey", "account"}
    assert entry["pubkey"] == str(ata)
    info = entry["account"]["data"]["parsed"]["info"]
    assert info["delegate"] == str(delegate.pubkey())
    assert info["delegatedAmount"]["amount"] == "1234"
    by_program = await rpc.call(
        "getTokenAccountsByDelegate",
        [str(delegate.pubkey()), {"programId": str(TOKEN_PROGRAM_ID)}, {"encoding": "base64"}],
    )
    assert [e["pubkey"] for e in by_program["value"]] == [str(ata)]
    nobody = await rpc.call(
        "getTokenAccountsByDelegate",
        [str(Keypair().pubkey()), {"programId": str(TOKEN_PROGRAM_ID)}],
    )
    assert nobody["value"] == []


async def test_json_parsed_nonce_and_sysvar(
    client: AsyncClient, funded: Funder, rpc: LocalnetRpc
) -> None:
    payer = await funded()
    nonce = Keypair()
    rent = (await client.get_minimum_balance_for_rent_exemption(80)).value
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    ixs = create_nonce_account(payer.pubkey(), nonce.pubkey(), payer.pubkey(), rent)
    await send_and_confirm(client, signed_tx(list(ixs), payer, blockhash, [nonce]))

    answer = await rpc.call("getAccountInfo", [str(nonce.pubkey()), {"encoding": "jsonParsed"}])
    data = answer["value"]["data"]
    assert data["program"] == "nonce"
    assert data["space"] == 80
    assert data["parsed"]["type"] == "initialized"
    info = data["parsed"]["info"]
    assert set(info) == {"authority", "blockhash", "feeCalculator"}
    assert info["authority"] == str(payer.pubkey())
    assert info["feeCalculator"] == {"lamportsPerSignature": "5000"}

    # A plain system account has nothing to parse: it falls back to base64.
    plain = await rpc.call("getAccountInfo", [str(payer.pubkey()), {"encoding": "jsonParsed"}])
    assert plain["value"]["data"] == ["", "base64"]

    clock = await rpc.call(
        "getAccountInfo",
        ["SysvarC1ock11111111111111111111111111111111", {"encoding": "jsonParsed"}],
    )
    parsed = clock["value"]["data"]
    assert parsed["program"] == "sysvar"
    assert parsed["parsed"]["type"] == "clock"
    assert set(parsed["parsed"]["info"]) == {
        "epoch",
        "epochStartTimestamp",
        "leaderScheduleEpoch",
        "slot",
        "unixTimestamp",
    }
