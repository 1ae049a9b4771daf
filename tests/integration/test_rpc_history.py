"""Transaction history and request options: getSignaturesForAddress, getFeeForMessage,
isBlockhashValid, minContextSlot, dataSlice, batches."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from conftest import Funder, Localnet
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.signature import Signature
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import MemoParams, create_memo
from support import (
    FEE_PER_SIGNATURE,
    LAMPORTS_PER_SOL,
    send_and_confirm,
    signed_tx,
    transfer_ix,
)

from perpool.localnet import LocalnetRpc

INVALID_PARAMS = -32602
MIN_CONTEXT_SLOT_NOT_REACHED = -32016
STATUS_KEYS = {"blockTime", "confirmationStatus", "err", "memo", "signature", "slot"}


async def error_of(rpc: LocalnetRpc, method: str, params: list[Any]) -> dict[str, Any]:
    body = await rpc.request(method, params)
    assert "error" in body, body
    return dict(body["error"])


async def transfer(
    client: AsyncClient, payer: Keypair, to: Keypair, lamports: int, memo: str | None = None
) -> Signature:
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    ixs = [transfer_ix(payer.pubkey(), to.pubkey(), lamports)]
    if memo is not None:
        ixs.append(create_memo(MemoParams(MEMO_PROGRAM_ID, payer.pubkey(), memo.encode())))
    return await send_and_confirm(client, signed_tx(ixs, payer, blockhash))


async def test_signatures_for_address(
    client: AsyncClient, funded: Funder, rpc: LocalnetRpc
) -> None:
    payer = await funded()
    watched = Keypair()
    sigs = [
        await transfer(client, payer, watched, LAMPORTS_PER_SOL + i, memo=f"note {i}")
        for i in range(4)
    ]
    listed = await rpc.call("getSignaturesForAddress", [str(watched.pubkey())])
    # Newest first.
    assert [e["signature"] for e in listed] == [str(s) for s in reversed(sigs)]
    for entry in listed:
        assert set(entry) == STATUS_KEYS
        assert entry["err"] is None
        assert entry["confirmationStatus"] == "finalized"
        assert isinstance(entry["blockTime"], int)
        assert entry["blockTime"] == await rpc.call("getBlockTime", [entry["slot"]])
    assert [e["memo"] for e in listed] == [f"[{len(f'note {i}')}] note {i}" for i in (3, 2, 1, 0)]
    slots = [e["slot"] for e in listed]
    assert slots == sorted(slots, reverse=True)

    # Paging: limit, before, until (both bounds exclusive).
    page = await rpc.call("getSignaturesForAddress", [str(watched.pubkey()), {"limit": 2}])
    assert [e["signature"] for e in page] == [str(sigs[3]), str(sigs[2])]
    page = await rpc.call(
        "getSignaturesForAddress", [str(watched.pubkey()), {"before": str(sigs[2])}]
    )
    assert [e["signature"] for e in page] == [str(sigs[1]), str(sigs[0])]
    page = await rpc.call(
        "getSignaturesForAddress", [str(watched.pubkey()), {"until": str(sigs[1])}]
    )
    assert [e["signature"] for e in page] == [str(sigs[3]), str(sigs[2])]

    # The payer's history also holds its funding airdrop; an unused address has none.
    payer_history = await rpc.call("getSignaturesForAddress", [str(payer.pubkey())])
    assert len(payer_history) == 5
    assert payer_history[0]["memo"] == "[6] note 3"
    assert payer_history[-1]["memo"] is None
    assert await rpc.call("getSignaturesForAddress", [str(Keypair().pubkey())]) == []

    typed = (await client.get_signatures_for_address(watched.pubkey(), limit=1)).value
    assert typed[0].signature == sigs[3]


async def test_signatures_for_address_records_failures(
    client: AsyncClient, funded: Funder, rpc: LocalnetRpc
) -> None:
    poor = await funded(LAMPORTS_PER_SOL)
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    tx = signed_tx(
        [transfer_ix(poor.pubkey(), Keypair().pubkey(), 2 * LAMPORTS_PER_SOL)], poor, blockhash
    )
    body = await rpc.request(
        "sendTransaction",
        [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64", "skipPreflight": True}],
    )
    signature = body["result"]
    await client.confirm_transaction(Signature.from_string(signature), Confirmed, sleep_seconds=0.1)
    (latest, _) = await rpc.call("getSignaturesForAddress", [str(poor.pubkey())])
    assert latest["signature"] == signature
    assert latest["err"] == {"InstructionError": [0, {"Custom": 1}]}


async def test_signatures_for_address_errors(rpc: LocalnetRpc) -> None:
    address = str(Keypair().pubkey())
    error = await error_of(rpc, "getSignaturesForAddress", [address, {"limit": 1001}])
    assert error == {"code": INVALID_PARAMS, "message": "Invalid limit; max 1000"}
    error = await error_of(rpc, "getSignaturesForAddress", [address, {"commitment": "processed"}])
    assert error["code"] == INVALID_PARAMS
    error = await error_of(rpc, "getSignaturesForAddress", [address, {"before": "x"}])
    assert error["code"] == INVALID_PARAMS
    error = await error_of(rpc, "getSignaturesForAddress", ["not-an-address"])
    assert error["code"] == INVALID_PARAMS
    error = await error_of(rpc, "getSignaturesForAddress", [address, {"minContextSlot": 10**12}])
    assert error["code"] == MIN_CONTEXT_SLOT_NOT_REACHED


async def test_fee_for_message_and_blockhash_validity(
    client: AsyncClient, funded: Funder, rpc: LocalnetRpc
) -> None:
    payer = await funded()
    cosigner = Keypair()
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    message = Message.new_with_blockhash(
        [
            transfer_ix(payer.pubkey(), cosigner.pubkey(), 1),
            transfer_ix(cosigner.pubkey(), payer.pubkey(), 1),
        ],
        payer.pubkey(),
        blockhash,
    )
    encoded = base64.b64encode(bytes(message)).decode()
    answer = await rpc.call("getFeeForMessage", [encoded, {"commitment": "confirmed"}])
    assert set(answer) == {"context", "value"}
    assert answer["value"] == 2 * FEE_PER_SIGNATURE
    assert (await client.get_fee_for_message(message)).value == 2 * FEE_PER_SIGNATURE

    valid = await rpc.call("isBlockhashValid", [str(blockhash), {"commitment": "processed"}])
    assert valid["value"] is True
    assert set(valid["context"]) == {"slot", "apiVersion"}
    invalid = await rpc.call("isBlockhashValid", [str(Hash.new_unique())])
    assert invalid["value"] is False
    error = await error_of(rpc, "isBlockhashValid", ["nope"])
    assert error["code"] == INVALID_PARAMS


async def test_min_context_slot(rpc: LocalnetRpc) -> None:
    slot = await rpc.call("getSlot", [{"commitment": "confirmed"}])
    assert await rpc.call("getSlot", [{"minContextSlot": slot}]) >= slot
    address = str(Keypair().pubkey())
    calls: list[tuple[str, list[Any]]] = [
        ("getSlot", [{"minContextSlot": slot + 10**9}]),
        ("getBalance", [address, {"minContextSlot": slot + 10**9}]),
        ("getAccountInfo", [address, {"minContextSlot": slot + 10**9}]),
        ("getLatestBlockhash", [{"minContextSlot": slot + 10**9}]),
    ]
    for method, params in calls:
        error = await error_of(rpc, method, params)
        assert error["code"] == MIN_CONTEXT_SLOT_NOT_REACHED, method
        assert error["message"] == "Minimum context slot has not been reached"
        assert isinstance(error["data"]["contextSlot"], int)


async def test_data_slice(localnet: Localnet, rpc: LocalnetRpc) -> None:
    program = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"  # data never changes
    whole = await rpc.call("getAccountInfo", [program, {"encoding": "base64"}])
    data = base64.b64decode(whole["value"]["data"][0])
    assert len(data) > 1000
    slice_config = {"encoding": "base64", "dataSlice": {"offset": 100, "length": 32}}
    sliced = await rpc.call("getAccountInfo", [program, slice_config])
    value = sliced["value"]
    assert base64.b64decode(value["data"][0]) == data[100:132]
    assert value["space"] == len(data)
    assert value["executable"] is True
    past_end = {"encoding": "base64", "dataSlice": {"offset": len(data) + 1, "length": 8}}
    empty = await rpc.call("getAccountInfo", [program, past_end])
    assert empty["value"]["data"] == ["", "base64"]
    # Base58 is limited to 128 bytes, but a slice of a big account is fine.
    small = {"encoding": "base58", "dataSlice": {"offset": 0, "length": 16}}
    assert (await rpc.call("getAccountInfo", [program, small]))["value"]["data"][1] == "base58"
    error = await error_of(rpc, "getAccountInfo", [program, {"encoding": "base58"}])
    assert error["code"] == INVALID_PARAMS
    many = await rpc.call(
        "getMultipleAccounts",
        [
            [program, str(localnet.faucet.pubkey())],
            {"encoding": "base64", "dataSlice": {"offset": 0, "length": 8}},
        ],
    )
    assert base64.b64decode(many["value"][0]["data"][0]) == data[:8]
    assert many["value"][1]["data"] == ["", "base64"]


async def test_batch_requests(localnet: Localnet) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
        {"jsonrpc": "2.0", "id": "two", "method": "getIdentity"},
        {"jsonrpc": "2.0", "id": 3, "method": "getBlock", "params": ["x"]},
        {"jsonrpc": "2.0", "id": 4, "method": "noSuchMethod"},
        {"jsonrpc": "2.0", "method": "getSlot"},  # a notification: no answer
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "getSignaturesForAddress",
            "params": [str(Keypair().pubkey())],
        },
    ]
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(localnet.url, json=batch)
    assert response.status_code == 200
    answers = response.json()
    assert [a["id"] for a in answers] == [1, "two", 3, 4, 5]
    assert isinstance(answers[0]["result"], int)
    assert set(answers[1]["result"]) == {"identity"}
    assert answers[2]["error"]["code"] == INVALID_PARAMS
    assert answers[3]["error"]["code"] == -32601
    assert answers[4]["result"] == []
