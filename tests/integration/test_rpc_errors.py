"""Bad requests get clean JSON-RPC errors with standard codes; the validator keeps serving."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from conftest import Funder, Localnet
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.core import RPCException
from solders.hash import Hash
from solders.keypair import Keypair
from support import (
    LAMPORTS_PER_SOL,
    balance,
    send_and_confirm,
    signed_tx,
    transfer_ix,
    wait_for_block_height,
)

from perpool.localnet import LocalnetProcess, LocalnetRpc, airdrop

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
PREFLIGHT_FAILURE = -32002
SIGNATURE_VERIFICATION_FAILURE = -32003


async def post_raw(url: str, content: bytes, headers: dict[str, str] | None = None) -> Any:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            url, content=content, headers={"Content-Type": "application/json", **(headers or {})}
        )
    # JSON-RPC errors travel with HTTP 200, as on solana-test-validator.
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


async def assert_still_serving(url: str) -> None:
    async with LocalnetRpc(url) as rpc:
        assert await rpc.health() == "ok"
        assert isinstance(await rpc.call("getSlot"), int)


def assert_error(body: Any, code: int) -> dict[str, Any]:
    assert isinstance(body, dict), body
    assert body.get("jsonrpc") == "2.0", body
    assert "result" not in body, body
    error = body.get("error")
    assert isinstance(error, dict), body
    assert error["code"] == code, body
    assert isinstance(error.get("message"), str), body
    assert error["message"], body
    return error


@pytest.mark.parametrize(
    "payload",
    [
        b"{",
        b"",
        b"not json at all",
        b'{"jsonrpc":"2.0","id":1,"method":"getHealth"',
        b"\xff\xfe\x00garbage",
    ],
    ids=["open-brace", "empty", "text", "truncated", "binary"],
)
async def test_malformed_json_is_parse_error(localnet: Localnet, payload: bytes) -> None:
    body = await post_raw(localnet.url, payload)
    assert_error(body, PARSE_ERROR)
    assert body.get("id") is None
    await assert_still_serving(localnet.url)


async def test_unknown_method(localnet: Localnet) -> None:
    request = {"jsonrpc": "2.0", "id": 7, "method": "getTheMoon", "params": []}
    body = await post_raw(localnet.url, json.dumps(request).encode())
    assert_error(body, METHOD_NOT_FOUND)
    assert body["id"] == 7
    await assert_still_serving(localnet.url)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("getBalance", ["not-a-pubkey"]),
        ("getBalance", []),
        ("getBalance", [12345]),
        ("getAccountInfo", [{"pubkey": "x"}]),
        ("getSignatureStatuses", ["not-a-list"]),
        ("getSignatureStatuses", [["not-a-signature"]]),
        ("sendTransaction", ["!!!not-base58!!!"]),
        ("sendTransaction", ["AAAA", {"encoding": "base64"}]),
        ("requestAirdrop", ["11111111111111111111111111111111", "lots"]),
        ("localnet_advanceClock", ["a day"]),
        ("localnet_warpSlots", [-5]),
    ],
)
async def test_wrong_params_are_invalid_params(
    localnet: Localnet, method: str, params: list[Any]
) -> None:
    request = {"jsonrpc": "2.0", "id": 3, "method": method, "params": params}
    body = await post_raw(localnet.url, json.dumps(request).encode())
    assert_error(body, INVALID_PARAMS)
    assert body["id"] == 3
    await assert_still_serving(localnet.url)


@pytest.mark.parametrize(
    "request_obj",
    [{"jsonrpc": "2.0", "id": 1}, {"jsonrpc": "2.0", "id": 1, "method": 42}],
    ids=["no-method", "method-not-string"],
)
async def test_invalid_request(localnet: Localnet, request_obj: Any) -> None:
    body = await post_raw(localnet.url, json.dumps(request_obj).encode())
    assert_error(body, INVALID_REQUEST)
    await assert_still_serving(localnet.url)


async def test_batch_request(localnet: Localnet) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
        {"jsonrpc": "2.0", "id": 2, "method": "noSuchMethod"},
        {"jsonrpc": "2.0", "id": 3, "method": "getSlot"},
    ]
    body = await post_raw(localnet.url, json.dumps(batch).encode())
    assert isinstance(body, list)
    assert len(body) == 3
    by_id = {entry["id"]: entry for entry in body}
    assert by_id[1]["result"] == "ok"
    assert_error(by_id[2], METHOD_NOT_FOUND)
    assert isinstance(by_id[3]["result"], int)


async def test_gzip_header_on_plain_body_is_tolerated(localnet: Localnet) -> None:
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getHealth"}).encode()
    body = await post_raw(localnet.url, request, {"Content-Encoding": "gzip"})
    assert body["result"] == "ok"


async def test_bad_signature_is_rejected_cleanly(
    client: AsyncClient, funded: Funder, localnet: Localnet
) -> None:
    sender = await funded(LAMPORTS_PER_SOL)
    recipient = Keypair()
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    tx = signed_tx([transfer_ix(sender.pubkey(), recipient.pubkey(), 1_000_000)], sender, blockhash)
    raw = bytearray(bytes(tx))
    raw[1 + 10] ^= 0xFF  # byte 10 of the first signature (after the 1-byte signature count)
    encoded = base64.b64encode(bytes(raw)).decode()

    request = {
        "jsonrpc": "2.0",
        "id": 9,
        "method": "sendTransaction",
        "params": [encoded, {"encoding": "base64", "preflightCommitment": "confirmed"}],
    }
    body = await post_raw(localnet.url, json.dumps(request).encode())
    code = body.get("error", {}).get("code")
    assert code in (SIGNATURE_VERIFICATION_FAILURE, PREFLIGHT_FAILURE), body
    error = assert_error(body, code)
    if error["code"] == PREFLIGHT_FAILURE:
        assert error["data"]["err"] == "SignatureFailure", body

    # solana-py surfaces it as an RPCException, not a crash or a hang.
    with pytest.raises(RPCException):
        await client.send_raw_transaction(bytes(raw))

    await assert_still_serving(localnet.url)
    assert await balance(client, sender.pubkey()) == LAMPORTS_PER_SOL
    assert await balance(client, recipient.pubkey()) == 0
    # The untampered transaction still goes through.
    await send_and_confirm(client, tx)
    assert await balance(client, recipient.pubkey()) == 1_000_000


async def test_expired_blockhash_is_preflight_failure(
    client: AsyncClient, funded: Funder, localnet: Localnet
) -> None:
    """A real blockhash stops being accepted once 150 newer blocks exist."""
    sender = await funded(LAMPORTS_PER_SOL)
    latest = (await client.get_latest_blockhash(Confirmed)).value
    tx = signed_tx([transfer_ix(sender.pubkey(), Keypair().pubkey(), 1)], sender, latest.blockhash)
    async with LocalnetRpc(localnet.url) as rpc:
        await rpc.warp_slots(151)
    height = (await client.get_block_height(Confirmed)).value
    assert height > latest.last_valid_block_height, (height, latest)
    async with LocalnetRpc(localnet.url) as rpc:
        valid = await rpc.call(
            "isBlockhashValid", [str(latest.blockhash), {"commitment": "confirmed"}]
        )
    assert valid["value"] is False
    request = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "sendTransaction",
        "params": [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}],
    }
    body = await post_raw(localnet.url, json.dumps(request).encode())
    error = assert_error(body, PREFLIGHT_FAILURE)
    assert error["data"]["err"] == "BlockhashNotFound", body
    await assert_still_serving(localnet.url)
    assert await balance(client, sender.pubkey()) == LAMPORTS_PER_SOL


async def test_unknown_blockhash_is_preflight_failure(
    client: AsyncClient, funded: Funder, localnet: Localnet
) -> None:
    sender = await funded(LAMPORTS_PER_SOL)
    tx = signed_tx([transfer_ix(sender.pubkey(), Keypair().pubkey(), 1)], sender, Hash.new_unique())
    request = {
        "jsonrpc": "2.0",
        "id": 4,
        "method": "sendTransaction",
        "params": [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}],
    }
    body = await post_raw(localnet.url, json.dumps(request).encode())
    error = assert_error(body, PREFLIGHT_FAILURE)
    assert error["data"]["err"] == "BlockhashNotFound", body
    await assert_still_serving(localnet.url)
    assert await balance(client, sender.pubkey()) == LAMPORTS_PER_SOL


async def test_blockhash_valid_for_150_blocks_then_expires(
    start_localnet: Callable[..., LocalnetProcess],
) -> None:
    # Short slots so that 150 blocks pass in a few seconds.
    net = start_localnet(slot_ms=20)
    async with AsyncClient(net.url, commitment=Confirmed, timeout=30) as client:
        sender = Keypair()
        await airdrop(client, sender.pubkey(), LAMPORTS_PER_SOL)
        latest = (await client.get_latest_blockhash(Processed)).value
        recipient = Keypair().pubkey()

        # Still valid well into its lifetime (about 110 blocks old).
        await wait_for_block_height(client, latest.last_valid_block_height - 40)
        ok_tx = signed_tx(
            [transfer_ix(sender.pubkey(), recipient, 1_000_500)], sender, latest.blockhash
        )
        await send_and_confirm(client, ok_tx)
        assert await balance(client, recipient) == 1_000_500

        # Past last_valid_block_height it is rejected by preflight.
        await wait_for_block_height(client, latest.last_valid_block_height + 2)
        late_tx = signed_tx(
            [transfer_ix(sender.pubkey(), recipient, 1_000_600)], sender, latest.blockhash
        )
        request = {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "sendTransaction",
            "params": [base64.b64encode(bytes(late_tx)).decode(), {"encoding": "base64"}],
        }
        body = await post_raw(net.url, json.dumps(request).encode())
        error = assert_error(body, PREFLIGHT_FAILURE)
        assert error["data"]["err"] == "BlockhashNotFound", body
        with pytest.raises(RPCException):
            await client.send_raw_transaction(bytes(late_tx))

        await assert_still_serving(net.url)
        assert await balance(client, recipient) == 1_000_500
        assert net.alive()


async def test_failed_transaction_carries_logs_in_error_data(
    client: AsyncClient, funded: Funder, localnet: Localnet
) -> None:
    sender = await funded(LAMPORTS_PER_SOL)
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    # More lamports than the sender has: the system program fails during preflight.
    tx = signed_tx(
        [transfer_ix(sender.pubkey(), Keypair().pubkey(), 2 * LAMPORTS_PER_SOL)], sender, blockhash
    )
    request = {
        "jsonrpc": "2.0",
        "id": 6,
        "method": "sendTransaction",
        "params": [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}],
    }
    body = await post_raw(localnet.url, json.dumps(request).encode())
    error = assert_error(body, PREFLIGHT_FAILURE)
    data = error["data"]
    assert data["err"] == {"InstructionError": [0, {"Custom": 1}]}, data
    assert "Program 11111111111111111111111111111111 invoke [1]" in data["logs"]
    assert any("insufficient lamports" in line for line in data["logs"]), data["logs"]
    await assert_still_serving(localnet.url)
    assert await balance(client, sender.pubkey()) == LAMPORTS_PER_SOL


async def test_validator_survives_all_of_the_above(localnet: Localnet) -> None:
    await assert_still_serving(localnet.url)
    if localnet.process is not None:
        assert localnet.process.alive()
