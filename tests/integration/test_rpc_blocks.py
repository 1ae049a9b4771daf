"""Blocks, slots and leaders: getBlock and friends, with the shapes of the Solana RPC docs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import Funder
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from support import FEE_PER_SIGNATURE, LAMPORTS_PER_SOL, send_and_confirm, signed_tx, transfer_ix

from perpool.localnet import LocalnetProcess, LocalnetRpc, RpcError

INVALID_PARAMS = -32602
BLOCK_CLEANED_UP = -32001
BLOCK_NOT_AVAILABLE = -32004
SLOT_SKIPPED = -32007
NO_SNAPSHOT = -32008
BLOCK_KEYS = {
    "blockHeight",
    "blockTime",
    "blockhash",
    "parentSlot",
    "previousBlockhash",
    "rewards",
    "transactions",
}
META_KEYS = {
    "computeUnitsConsumed",
    "err",
    "fee",
    "innerInstructions",
    "loadedAddresses",
    "logMessages",
    "postBalances",
    "postTokenBalances",
    "preBalances",
    "preTokenBalances",
    "rewards",
    "status",
}


async def error_of(rpc: LocalnetRpc, method: str, params: list[Any]) -> dict[str, Any]:
    body = await rpc.request(method, params)
    assert "error" in body, body
    return dict(body["error"])


async def landed_transfer(client: AsyncClient, funded: Funder) -> tuple[str, int, Keypair]:
    payer = await funded()
    recipient = Keypair()
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    tx = signed_tx(
        [transfer_ix(payer.pubkey(), recipient.pubkey(), LAMPORTS_PER_SOL)], payer, blockhash
    )
    signature = await send_and_confirm(client, tx)
    status = (await client.get_signature_statuses([signature])).value[0]
    assert status is not None
    return str(signature), status.slot, payer


async def test_get_block_full(client: AsyncClient, funded: Funder, rpc: LocalnetRpc) -> None:
    signature, slot, payer = await landed_transfer(client, funded)
    block = await rpc.call("getBlock", [slot, {"maxSupportedTransactionVersion": 0}])
    assert set(block) == BLOCK_KEYS
    assert block["parentSlot"] < slot
    assert isinstance(block["blockHeight"], int)
    assert isinstance(block["blockTime"], int)
    assert block["blockhash"] != block["previousBlockhash"]
    assert isinstance(block["rewards"], list)
    for reward in block["rewards"]:
        assert set(reward) == {"pubkey", "lamports", "postBalance", "rewardType", "commission"}
    (entry,) = [t for t in block["transactions"] if t["transaction"]["signatures"] == [signature]]
    assert set(entry) == {"transaction", "meta", "version"}
    assert entry["version"] == "legacy"
    assert set(entry["meta"]) == META_KEYS
    assert entry["meta"]["fee"] == FEE_PER_SIGNATURE
    assert entry["meta"]["err"] is None
    assert entry["meta"]["status"] == {"Ok": None}
    message = entry["transaction"]["message"]
    assert set(message) == {"accountKeys", "header", "instructions", "recentBlockhash"}
    assert message["accountKeys"][0] == str(payer.pubkey())

    # The parent block links up, and getBlockTime agrees.
    parent = await rpc.call("getBlock", [block["parentSlot"]])
    assert parent["blockhash"] == block["previousBlockhash"]
    assert await rpc.call("getBlockTime", [slot]) == block["blockTime"]

    # solana-py parses it into its typed form.
    typed = (await client.get_block(slot, max_supported_transaction_version=0)).value
    assert str(typed.blockhash) == block["blockhash"]
    assert typed.parent_slot == block["parentSlot"]


@pytest.mark.parametrize(
    ("details", "keys"),
    [
        ("signatures", BLOCK_KEYS - {"transactions"} | {"signatures"}),
        ("none", BLOCK_KEYS - {"transactions"}),
        ("accounts", BLOCK_KEYS),
    ],
)
async def test_get_block_transaction_details(
    client: AsyncClient, funded: Funder, rpc: LocalnetRpc, details: str, keys: set[str]
) -> None:
    signature, slot, _ = await landed_transfer(client, funded)
    block = await rpc.call("getBlock", [slot, {"transactionDetails": details, "rewards": True}])
    assert set(block) == keys
    if details == "signatures":
        assert signature in block["signatures"]
    if details == "accounts":
        (entry,) = [
            t for t in block["transactions"] if t["transaction"]["signatures"] == [signature]
        ]
        account = entry["transaction"]["accountKeys"][0]
        assert set(account) == {"pubkey", "signer", "source", "writable"}
        assert account["signer"] is True
    without_rewards = await rpc.call(
        "getBlock", [slot, {"transactionDetails": details, "rewards": False}]
    )
    assert "rewards" not in without_rewards


@pytest.mark.parametrize("encoding", ["json", "jsonParsed", "base64", "base58"])
async def test_get_block_encodings(
    client: AsyncClient, funded: Funder, rpc: LocalnetRpc, encoding: str
) -> None:
    signature, slot, _ = await landed_transfer(client, funded)
    block = await rpc.call("getBlock", [slot, {"encoding": encoding}])
    txs = block["transactions"]
    assert txs
    tx = txs[-1]["transaction"]
    if encoding in ("base64", "base58"):
        assert isinstance(tx, list)
        assert tx[1] == encoding
    elif encoding == "jsonParsed":
        ix = tx["message"]["instructions"][0]
        assert ix["program"] == "system"
        assert ix["parsed"]["type"] == "transfer"
        assert ix["parsed"]["info"]["lamports"] == LAMPORTS_PER_SOL
    else:
        assert signature in [t["transaction"]["signatures"][0] for t in txs]


async def test_get_block_errors(rpc: LocalnetRpc) -> None:
    slot = await rpc.call("getSlot", [{"commitment": "processed"}])
    error = await error_of(rpc, "getBlock", [slot + 10_000])
    assert error["code"] == BLOCK_NOT_AVAILABLE
    assert error["message"] == f"Block not available for slot {slot + 10_000}"
    error = await error_of(rpc, "getBlock", [1, {"commitment": "processed"}])
    assert error["code"] == INVALID_PARAMS
    error = await error_of(rpc, "getBlock", ["one"])
    assert error["code"] == INVALID_PARAMS
    error = await error_of(rpc, "getBlock", [])
    assert error["code"] == INVALID_PARAMS


@pytest.mark.fresh_localnet
async def test_skipped_slots(start_localnet: Callable[..., LocalnetProcess]) -> None:
    net = start_localnet()
    async with LocalnetRpc(net.url) as rpc:
        before = await rpc.call("getSlot", [{"commitment": "processed"}])
        # 305 slots: the last jump skips 5 of them, as warps beyond 300 blocks do.
        after = (await rpc.call("localnet_warpSlots", [305]))["slot"]
        assert after >= before + 305
        blocks = await rpc.call("getBlocks", [before, after - 1])
        skipped = sorted(set(range(before, after)) - set(blocks))
        assert len(skipped) == 5
        error = await error_of(rpc, "getBlock", [skipped[0]])
        assert error["code"] == SLOT_SKIPPED
        # The block after the gap must be complete first.
        await rpc.call("localnet_warpSlots", [1])
        limited = await rpc.call("getBlocksWithLimit", [skipped[0] - 1, 3])
        assert limited[0] == skipped[0] - 1
        assert limited[1] == skipped[-1] + 1
        production = await rpc.call(
            "getBlockProduction", [{"range": {"firstSlot": before, "lastSlot": after - 1}}]
        )
        (counts,) = production["value"]["byIdentity"].values()
        assert counts == [after - before, after - before - 5]


async def test_blocks_ranges(rpc: LocalnetRpc) -> None:
    finalized = await rpc.call("getSlot", [{"commitment": "finalized"}])
    first = await rpc.call("getFirstAvailableBlock")
    assert await rpc.call("minimumLedgerSlot") == first
    blocks = await rpc.call("getBlocks", [max(first, finalized - 5), finalized])
    assert blocks == sorted(blocks)
    assert blocks[-1] == finalized
    assert await rpc.call("getBlocks", [finalized, finalized - 1]) == []
    assert await rpc.call("getBlocksWithLimit", [first, 2]) == [first, first + 1]
    error = await error_of(rpc, "getBlocksWithLimit", [first, 500_001])
    assert error["code"] == INVALID_PARAMS


async def test_block_commitment_and_production(client: AsyncClient, rpc: LocalnetRpc) -> None:
    slot = await rpc.call("getSlot")
    commitment = await rpc.call("getBlockCommitment", [slot])
    assert set(commitment) == {"commitment", "totalStake"}
    assert commitment["commitment"] is None  # rooted
    assert commitment["totalStake"] > 0

    production = await rpc.call("getBlockProduction")
    assert set(production) == {"context", "value"}
    assert set(production["value"]) == {"byIdentity", "range"}
    identity = (await rpc.call("getIdentity"))["identity"]
    leader_slots, produced = production["value"]["byIdentity"][identity]
    assert 0 < produced <= leader_slots
    rng = production["value"]["range"]
    assert set(rng) == {"firstSlot", "lastSlot"}
    assert rng["firstSlot"] == 0
    assert rng["lastSlot"] == production["context"]["slot"]
    other = await rpc.call("getBlockProduction", [{"identity": str(Keypair().pubkey())}])
    assert other["value"]["byIdentity"] == {}
    error = await error_of(rpc, "getBlockProduction", [{"range": {"firstSlot": 10, "lastSlot": 5}}])
    assert error["code"] == INVALID_PARAMS
    typed = (await client.get_block_commitment(slot)).value
    assert typed.total_stake == commitment["totalStake"]


async def test_leaders(client: AsyncClient, rpc: LocalnetRpc) -> None:
    identity = (await rpc.call("getIdentity"))["identity"]
    assert await rpc.call("getSlotLeader") == identity
    assert await rpc.call("getSlotLeader", [{"commitment": "processed"}]) == identity
    slot = await rpc.call("getSlot")
    assert await rpc.call("getSlotLeaders", [slot, 10]) == [identity] * 10
    error = await error_of(rpc, "getSlotLeaders", [slot, 5001])
    assert error["code"] == INVALID_PARAMS
    assert error["message"] == "Invalid limit; max 5000"

    schedule = await rpc.call("getLeaderSchedule")
    assert list(schedule) == [identity]
    epoch = await rpc.call("getEpochSchedule")
    assert schedule[identity] == list(range(epoch["slotsPerEpoch"]))
    assert await rpc.call("getLeaderSchedule", [None, {"identity": identity}]) == schedule
    assert await rpc.call("getLeaderSchedule", [slot]) == schedule
    assert await rpc.call("getLeaderSchedule", [{"identity": str(Keypair().pubkey())}]) == {}
    assert await rpc.call("getLeaderSchedule", [10 * epoch["slotsPerEpoch"]]) is None
    typed = (await client.get_leader_schedule()).value
    assert typed is not None
    assert len(typed) == 1


async def test_shred_and_snapshot_slots(rpc: LocalnetRpc) -> None:
    finalized = await rpc.call("getSlot")
    assert await rpc.call("getMaxRetransmitSlot") >= finalized
    assert await rpc.call("getMaxShredInsertSlot") >= finalized
    error = await error_of(rpc, "getHighestSnapshotSlot", [])
    assert error == {"code": NO_SNAPSHOT, "message": "No snapshot"}


async def test_typed_block_helpers(client: AsyncClient) -> None:
    slot = (await client.get_slot(Confirmed)).value
    blocks = (await client.get_blocks(max(0, slot - 3), slot)).value
    assert blocks[-1] == slot
    assert (await client.get_first_available_block()).value == 0
    block = (await client.get_block(slot)).value
    assert block.block_height is not None


async def test_block_height_tracks_blocks(rpc: LocalnetRpc) -> None:
    slot = await rpc.call("getSlot")
    block = await rpc.call("getBlock", [slot, {"transactionDetails": "none"}])
    assert block["blockHeight"] <= await rpc.call("getBlockHeight")
    with pytest.raises(RpcError):
        await rpc.call("getBlock", [slot, {"encoding": "yaml"}])
