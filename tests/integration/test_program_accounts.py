"""getProgramAccounts with dataSize and memcmp filters returns exactly the matching accounts."""

from __future__ import annotations

import base64
import struct

from conftest import Funder
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.types import MemcmpOpts, TxOpts
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from support import MINT_SIZE, TOKEN_ACCOUNT_SIZE

from perpool.localnet import LocalnetRpc
from perpool.program import b58encode

CONFIRM = TxOpts(skip_confirmation=False, preflight_commitment=Confirmed)
MINT_OFFSET = 0
OWNER_OFFSET = 32
AMOUNT_OFFSET = 64
MINT_AUTHORITY_OFFSET = 4  # after the 4-byte COption tag


def memcmp(offset: int, key: Pubkey) -> MemcmpOpts:
    return MemcmpOpts(offset=offset, bytes=b58encode(bytes(key)))


async def matching(client: AsyncClient, *filters: int | MemcmpOpts) -> set[Pubkey]:
    resp = await client.get_program_accounts(
        TOKEN_PROGRAM_ID, Confirmed, encoding="base64", filters=list(filters)
    )
    for keyed in resp.value:
        assert keyed.account.owner == TOKEN_PROGRAM_ID
    return {keyed.pubkey for keyed in resp.value}


async def test_token_accounts_filtered_by_mint_and_owner(
    client: AsyncClient, funded: Funder, rpc: LocalnetRpc
) -> None:
    payer = await funded()
    authority = payer  # solana-py's AsyncToken.mint_to signs with the payer only
    x, y = Keypair().pubkey(), Keypair().pubkey()
    mint_a = await AsyncToken.create_mint(client, payer, authority.pubkey(), 0, TOKEN_PROGRAM_ID)
    mint_b = await AsyncToken.create_mint(client, payer, authority.pubkey(), 0, TOKEN_PROGRAM_ID)

    xa_ata = await mint_a.create_associated_token_account(x)
    xa_plain = await mint_a.create_account(x)  # a second, non-associated account of X for mint A
    ya_ata = await mint_a.create_associated_token_account(y)
    xb_ata = await mint_b.create_associated_token_account(x)
    await mint_a.mint_to(xa_plain, authority, 77, opts=CONFIRM)

    assert await matching(client, TOKEN_ACCOUNT_SIZE, memcmp(MINT_OFFSET, mint_a.pubkey)) == {
        xa_ata,
        xa_plain,
        ya_ata,
    }
    assert await matching(client, TOKEN_ACCOUNT_SIZE, memcmp(OWNER_OFFSET, x)) == {
        xa_ata,
        xa_plain,
        xb_ata,
    }
    assert await matching(
        client, TOKEN_ACCOUNT_SIZE, memcmp(MINT_OFFSET, mint_a.pubkey), memcmp(OWNER_OFFSET, x)
    ) == {xa_ata, xa_plain}
    assert (
        await matching(client, memcmp(MINT_OFFSET, mint_b.pubkey), memcmp(OWNER_OFFSET, y)) == set()
    )
    assert await matching(client, MINT_SIZE, memcmp(MINT_AUTHORITY_OFFSET, authority.pubkey())) == {
        mint_a.pubkey,
        mint_b.pubkey,
    }
    # No SPL Token account is 164 bytes long.
    assert (
        await matching(client, TOKEN_ACCOUNT_SIZE - 1, memcmp(MINT_OFFSET, mint_a.pubkey)) == set()
    )

    # Returned data is the real account data: the amount sits at offset 64.
    resp = await client.get_program_accounts(
        TOKEN_PROGRAM_ID,
        Confirmed,
        encoding="base64",
        filters=[TOKEN_ACCOUNT_SIZE, memcmp(MINT_OFFSET, mint_a.pubkey), memcmp(OWNER_OFFSET, x)],
    )
    amounts = {
        keyed.pubkey: struct.unpack_from("<Q", keyed.account.data, AMOUNT_OFFSET)[0]
        for keyed in resp.value
    }
    assert amounts == {xa_ata: 0, xa_plain: 77}

    # memcmp bytes may also be given base64-encoded (raw JSON-RPC, as the spec allows).
    raw = await rpc.call(
        "getProgramAccounts",
        [
            str(TOKEN_PROGRAM_ID),
            {
                "encoding": "base64",
                "commitment": "confirmed",
                "filters": [
                    {"dataSize": TOKEN_ACCOUNT_SIZE},
                    {
                        "memcmp": {
                            "offset": OWNER_OFFSET,
                            "bytes": base64.b64encode(bytes(y)).decode(),
                            "encoding": "base64",
                        }
                    },
                ],
            },
        ],
    )
    assert isinstance(raw, list)
    assert [entry["pubkey"] for entry in raw] == [str(ya_ata)]
    entry = raw[0]["account"]
    assert entry["owner"] == str(TOKEN_PROGRAM_ID)
    assert entry["data"][1] == "base64"
    assert len(base64.b64decode(entry["data"][0])) == TOKEN_ACCOUNT_SIZE
    assert "rentEpoch" in entry
    assert entry["executable"] is False
