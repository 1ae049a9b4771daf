"""Cluster and economics methods answer as a one-node solana-test-validator does."""

from __future__ import annotations

import json
from typing import Any

from conftest import Localnet, websocket_url
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair

from perpool.localnet import LocalnetRpc

INVALID_PARAMS = -32602
BLOCK_NOT_AVAILABLE = -32004
LAMPORTS_PER_SOL = 1_000_000_000
STAKE_PROGRAM = "Stake11111111111111111111111111111111111111"
CONTACT_KEYS = {
    "featureSet",
    "gossip",
    "pubkey",
    "pubsub",
    "rpc",
    "serveRepair",
    "shredVersion",
    "tpu",
    "tpuForwards",
    "tpuForwardsQuic",
    "tpuQuic",
    "tpuVote",
    "tvu",
    "version",
}
VOTE_KEYS = {
    "activatedStake",
    "commission",
    "epochCredits",
    "epochVoteAccount",
    "lastVote",
    "nodePubkey",
    "rootSlot",
    "votePubkey",
}


async def error_of(rpc: LocalnetRpc, method: str, params: list[Any]) -> dict[str, Any]:
    body = await rpc.request(method, params)
    assert "error" in body, body
    return dict(body["error"])


async def test_cluster_nodes(rpc: LocalnetRpc, localnet: Localnet, client: AsyncClient) -> None:
    (node,) = await rpc.call("getClusterNodes")
    assert set(node) == CONTACT_KEYS
    assert node["pubkey"] == (await rpc.call("getIdentity"))["identity"]
    assert f"http://{node['rpc']}" == localnet.url
    assert f"ws://{node['pubsub']}" == websocket_url(localnet)
    version = await rpc.call("getVersion")
    assert node["version"] == version["solana-core"]
    assert node["featureSet"] == version["feature-set"]
    assert isinstance(node["shredVersion"], int)
    typed = (await client.get_cluster_nodes()).value
    assert json.loads(typed[0].to_json())["pubkey"] == node["pubkey"]


async def test_vote_accounts(rpc: LocalnetRpc, client: AsyncClient) -> None:
    accounts = await rpc.call("getVoteAccounts")
    assert set(accounts) == {"current", "delinquent"}
    assert accounts["delinquent"] == []
    (vote,) = accounts["current"]
    assert set(vote) == VOTE_KEYS
    assert vote["nodePubkey"] == (await rpc.call("getIdentity"))["identity"]
    assert vote["activatedStake"] > 0
    assert vote["epochVoteAccount"] is True
    assert 0 <= vote["commission"] <= 100
    assert vote["lastVote"] >= vote["rootSlot"] > 0
    for entry in vote["epochCredits"]:
        assert len(entry) == 3
    commitment = await rpc.call("getBlockCommitment", [vote["lastVote"]])
    assert commitment["totalStake"] == vote["activatedStake"]

    only = await rpc.call("getVoteAccounts", [{"votePubkey": vote["votePubkey"]}])
    assert [v["votePubkey"] for v in only["current"]] == [vote["votePubkey"]]
    error = await error_of(rpc, "getVoteAccounts", [{"votePubkey": str(Keypair().pubkey())}])
    assert error["code"] == INVALID_PARAMS
    typed = (await client.get_vote_accounts()).value
    assert str(typed.current[0].vote_pubkey) == vote["votePubkey"]


async def test_epoch_genesis_identity(rpc: LocalnetRpc) -> None:
    schedule = await rpc.call("getEpochSchedule")
    assert schedule == {
        "firstNormalEpoch": 0,
        "firstNormalSlot": 0,
        "leaderScheduleSlotOffset": schedule["slotsPerEpoch"],
        "slotsPerEpoch": schedule["slotsPerEpoch"],
        "warmup": False,
    }
    genesis = await rpc.call("getGenesisHash")
    assert isinstance(genesis, str)
    assert len(genesis) >= 32
    assert await rpc.call("getGenesisHash") == genesis
    identity = await rpc.call("getIdentity")
    assert set(identity) == {"identity"}
    info = await rpc.call("getEpochInfo")
    assert set(info) == {
        "absoluteSlot",
        "blockHeight",
        "epoch",
        "slotIndex",
        "slotsInEpoch",
        "transactionCount",
    }


async def test_inflation(rpc: LocalnetRpc, client: AsyncClient) -> None:
    governor = await rpc.call("getInflationGovernor")
    assert set(governor) == {"foundation", "foundationTerm", "initial", "taper", "terminal"}
    assert all(isinstance(v, float) for v in governor.values())
    assert governor["initial"] >= governor["terminal"]
    rate = await rpc.call("getInflationRate")
    assert set(rate) == {"epoch", "foundation", "total", "validator"}
    assert rate["epoch"] == (await rpc.call("getEpochInfo"))["epoch"]
    assert abs(rate["total"] - rate["validator"] - rate["foundation"]) < 1e-9
    assert (await client.get_inflation_governor()).value.initial == governor["initial"]
    assert (await client.get_inflation_rate()).value.epoch == rate["epoch"]

    # Epoch 0 has not ended, so its rewards block does not exist yet (as on a fresh
    # solana-test-validator).
    slots_per_epoch = (await rpc.call("getEpochSchedule"))["slotsPerEpoch"]
    error = await error_of(rpc, "getInflationReward", [[str(Keypair().pubkey())]])
    assert error["code"] == BLOCK_NOT_AVAILABLE
    assert error["message"] == f"Block not available for slot {slots_per_epoch}"
    error = await error_of(rpc, "getInflationReward", [["nope"]])
    assert error["code"] == INVALID_PARAMS


async def test_supply_and_largest_accounts(rpc: LocalnetRpc, localnet: Localnet) -> None:
    supply = await rpc.call("getSupply")
    assert set(supply) == {"context", "value"}
    value = supply["value"]
    assert set(value) == {"circulating", "nonCirculating", "nonCirculatingAccounts", "total"}
    assert value["total"] == value["circulating"] + value["nonCirculating"]
    assert value["total"] > 500_000_000 * LAMPORTS_PER_SOL  # the faucet alone holds that much
    assert all(isinstance(a, str) for a in value["nonCirculatingAccounts"])
    short = await rpc.call("getSupply", [{"excludeNonCirculatingAccountsList": True}])
    assert short["value"]["nonCirculatingAccounts"] == []

    largest = await rpc.call("getLargestAccounts")
    assert set(largest) == {"context", "value"}
    assert 0 < len(largest["value"]) <= 20
    for entry in largest["value"]:
        assert set(entry) == {"address", "lamports"}
    amounts = [e["lamports"] for e in largest["value"]]
    assert amounts == sorted(amounts, reverse=True)
    assert largest["value"][0]["address"] == str(localnet.faucet.pubkey())
    circulating = await rpc.call("getLargestAccounts", [{"filter": "circulating"}])
    assert circulating["value"][0]["address"] == str(localnet.faucet.pubkey())
    non_circulating = await rpc.call("getLargestAccounts", [{"filter": "nonCirculating"}])
    listed = set(value["nonCirculatingAccounts"])
    assert {e["address"] for e in non_circulating["value"]} <= listed
    error = await error_of(rpc, "getLargestAccounts", [{"filter": "big"}])
    assert error["code"] == INVALID_PARAMS


async def test_stake_minimum_delegation(rpc: LocalnetRpc) -> None:
    answer = await rpc.call("getStakeMinimumDelegation", [{"commitment": "confirmed"}])
    assert set(answer) == {"context", "value"}
    assert answer["value"] == LAMPORTS_PER_SOL  # all features are active on a localnet


async def test_recent_performance_samples(rpc: LocalnetRpc) -> None:
    # Samples are taken once a minute, newest first; a young node may have none yet.
    samples = await rpc.call("getRecentPerformanceSamples", [5])
    assert isinstance(samples, list)
    assert len(samples) <= 5
    for sample in samples:
        assert set(sample) == {
            "numNonVoteTransactions",
            "numSlots",
            "numTransactions",
            "samplePeriodSecs",
            "slot",
        }
        assert sample["samplePeriodSecs"] == 60
    error = await error_of(rpc, "getRecentPerformanceSamples", [721])
    assert error == {"code": INVALID_PARAMS, "message": "Invalid limit; max 720"}


async def test_genesis_stake_account_is_parsed(rpc: LocalnetRpc) -> None:
    accounts = await rpc.call("getProgramAccounts", [STAKE_PROGRAM, {"encoding": "jsonParsed"}])
    assert accounts
    parsed = accounts[0]["account"]["data"]
    assert parsed["program"] == "stake"
    assert parsed["parsed"]["type"] == "delegated"
    info = parsed["parsed"]["info"]
    assert set(info) == {"meta", "stake"}
    vote = (await rpc.call("getVoteAccounts"))["current"][0]
    assert info["stake"]["delegation"]["voter"] == vote["votePubkey"]
    vote_account = await rpc.call(
        "getAccountInfo", [vote["votePubkey"], {"encoding": "jsonParsed"}]
    )
    assert vote_account["value"]["data"]["program"] == "vote"
    assert vote_account["value"]["data"]["parsed"]["info"]["nodePubkey"] == vote["nodePubkey"]
