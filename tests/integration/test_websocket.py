"""WebSocket pubsub: every subscription, its notification shape and its commitment semantics.

Shapes follow the Solana RPC documentation (websocket methods); raw messages are checked field
by field, and solana-py's own websocket client (``solana.rpc.websocket_api.connect``) must parse
them.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Funder, websocket_url
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.types import TxOpts
from solana.rpc.websocket_api import connect
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.responses import (
    AccountNotification,
    LogsNotification,
    ProgramNotification,
    RootNotification,
    SignatureNotification,
    SlotNotification,
    SubscriptionResult,
)
from solders.signature import Signature
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from support import (
    FEE_PER_SIGNATURE,
    LAMPORTS_PER_SOL,
    TOKEN_ACCOUNT_SIZE,
    RawWs,
    signed_tx,
    transfer_ix,
)

from perpool.localnet import LocalnetProcess, free_port, port_is_free
from perpool.program import b58encode

SYSTEM_PROGRAM = "11111111111111111111111111111111"
ACCOUNT_KEYS = {"data", "executable", "lamports", "owner", "rentEpoch", "space"}
INVALID_PARAMS = -32602
METHOD_NOT_FOUND = -32601
PARSE_ERROR = -32700


async def send_transfer(
    client: AsyncClient, payer: Keypair, to: Pubkey, lamports: int, skip_preflight: bool = False
) -> Signature:
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    tx = signed_tx([transfer_ix(payer.pubkey(), to, lamports)], payer, blockhash)
    opts = TxOpts(skip_preflight=skip_preflight, preflight_commitment=Confirmed)
    return (await client.send_raw_transaction(bytes(tx), opts)).value


def assert_context(result: dict[str, Any]) -> int:
    assert set(result) == {"context", "value"}, result
    assert set(result["context"]) == {"slot"}, result
    slot = result["context"]["slot"]
    assert isinstance(slot, int)
    assert slot > 0
    return slot


def assert_account(value: dict[str, Any], lamports: int, owner: str = SYSTEM_PROGRAM) -> None:
    assert set(value) == ACCOUNT_KEYS, value
    assert value["lamports"] == lamports
    assert value["owner"] == owner
    assert value["executable"] is False
    assert isinstance(value["rentEpoch"], int)
    assert isinstance(value["space"], int)


async def test_account_subscribe_processed_then_confirmed(
    client: AsyncClient, funded: Funder, ws_url: str
) -> None:
    payer = await funded()
    target = Keypair().pubkey()
    async with RawWs(ws_url) as ws:
        base64_config = {"encoding": "base64"}
        processed = await ws.subscribe(
            "accountSubscribe", [str(target), {**base64_config, "commitment": "processed"}]
        )
        confirmed = await ws.subscribe(
            "accountSubscribe", [str(target), {**base64_config, "commitment": "confirmed"}]
        )
        finalized = await ws.subscribe("accountSubscribe", [str(target), base64_config])
        assert len({processed, confirmed, finalized}) == 3

        await send_transfer(client, payer, target, LAMPORTS_PER_SOL)
        arrived: list[dict[str, Any]] = []
        while len(arrived) < 3:
            message = await ws.recv()
            if message.get("method") == "accountNotification":
                arrived.append(message)
        # processed first: it is sent as soon as the transaction executes.
        assert arrived[0]["params"]["subscription"] == processed
        assert {m["params"]["subscription"] for m in arrived} == {processed, confirmed, finalized}
        first = arrived[0]
        assert set(first) == {"jsonrpc", "method", "params"}
        assert first["jsonrpc"] == "2.0"
        assert set(first["params"]) == {"result", "subscription"}
        result = first["params"]["result"]
        processed_slot = assert_context(result)
        assert_account(result["value"], LAMPORTS_PER_SOL)
        assert result["value"]["data"] == ["", "base64"]
        assert result["value"]["space"] == 0
        for note in arrived[1:]:
            slot = assert_context(note["params"]["result"])
            assert slot >= processed_slot
            assert_account(note["params"]["result"]["value"], LAMPORTS_PER_SOL)
        # By the confirmed notification the slot is frozen: reads at that commitment agree.
        info = (await client.get_account_info(target, Confirmed)).value
        assert info is not None
        assert info.lamports == LAMPORTS_PER_SOL


async def test_account_subscribe_data_encodings_and_slice(
    client: AsyncClient, funded: Funder, ws_url: str
) -> None:
    payer = await funded()
    token = await AsyncToken.create_mint(
        client, payer, payer.pubkey(), 6, TOKEN_PROGRAM_ID, freeze_authority=None
    )
    owner = Keypair()
    ata = await token.create_associated_token_account(owner.pubkey())
    async with RawWs(ws_url) as ws:
        parsed = await ws.subscribe(
            "accountSubscribe", [str(ata), {"encoding": "jsonParsed", "commitment": "confirmed"}]
        )
        sliced = await ws.subscribe(
            "accountSubscribe",
            [
                str(ata),
                {
                    "encoding": "base64",
                    "commitment": "confirmed",
                    "dataSlice": {"offset": 64, "length": 8},
                },
            ],
        )
        await token.mint_to(ata, payer, 1_500_000, opts=TxOpts(preflight_commitment=Confirmed))

        note = await ws.notification(parsed)
        value = note["params"]["result"]["value"]
        assert value["owner"] == str(TOKEN_PROGRAM_ID)
        data = value["data"]
        assert set(data) == {"program", "parsed", "space"}
        assert data["program"] == "spl-token"
        assert data["space"] == TOKEN_ACCOUNT_SIZE
        assert data["parsed"]["type"] == "account"
        info = data["parsed"]["info"]
        assert info["mint"] == str(token.pubkey)
        assert info["owner"] == str(owner.pubkey())
        assert info["state"] == "initialized"
        assert info["tokenAmount"] == {
            "amount": "1500000",
            "decimals": 6,
            "uiAmount": 1.5,
            "uiAmountString": "1.5",
        }

        note = await ws.notification(sliced)
        encoded, encoding = note["params"]["result"]["value"]["data"]
        assert encoding == "base64"
        assert int.from_bytes(base64.b64decode(encoded), "little") == 1_500_000


async def test_closed_account_is_notified_as_empty(
    client: AsyncClient, funded: Funder, ws_url: str
) -> None:
    holder = await funded(LAMPORTS_PER_SOL)
    sink = Keypair().pubkey()
    async with RawWs(ws_url) as ws:
        sub = await ws.subscribe(
            "accountSubscribe",
            [str(holder.pubkey()), {"encoding": "base64", "commitment": "confirmed"}],
        )
        # Everything out, fee included: the account disappears.
        await send_transfer(client, holder, sink, LAMPORTS_PER_SOL - FEE_PER_SIGNATURE)
        note = await ws.notification(sub)
        value = note["params"]["result"]["value"]
        assert value["lamports"] == 0
        assert value["owner"] == SYSTEM_PROGRAM
        assert value["data"] == ["", "base64"]
    assert (await client.get_account_info(holder.pubkey(), Confirmed)).value is None


async def test_program_subscribe_with_filters(
    client: AsyncClient, funded: Funder, ws_url: str
) -> None:
    payer = await funded()
    token = await AsyncToken.create_mint(
        client, payer, payer.pubkey(), 2, TOKEN_PROGRAM_ID, freeze_authority=None
    )
    watched, other = Keypair(), Keypair()
    watched_ata = await token.create_associated_token_account(watched.pubkey())
    other_ata = await token.create_associated_token_account(other.pubkey())
    filters = [
        {"dataSize": TOKEN_ACCOUNT_SIZE},
        {"memcmp": {"offset": 32, "bytes": b58encode(bytes(watched.pubkey()))}},
    ]
    opts = TxOpts(preflight_commitment=Confirmed)
    async with RawWs(ws_url) as ws:
        confirmed = await ws.subscribe(
            "programSubscribe",
            [
                str(TOKEN_PROGRAM_ID),
                {"encoding": "jsonParsed", "commitment": "confirmed", "filters": filters},
            ],
        )
        processed = await ws.subscribe(
            "programSubscribe",
            [
                str(TOKEN_PROGRAM_ID),
                {"encoding": "base64", "commitment": "processed", "filters": filters},
            ],
        )
        # A change the filters exclude first, then the one they select.
        await token.mint_to(other_ata, payer, 700, opts=opts)
        await token.mint_to(watched_ata, payer, 900, opts=opts)

        for sub in (processed, confirmed):
            note = await ws.notification(sub)
            assert note["method"] == "programNotification"
            result = note["params"]["result"]
            assert_context(result)
            value = result["value"]
            assert set(value) == {"pubkey", "account"}
            assert value["pubkey"] == str(watched_ata)
            assert set(value["account"]) == ACCOUNT_KEYS
            assert value["account"]["owner"] == str(TOKEN_PROGRAM_ID)
            data = value["account"]["data"]
            if sub == confirmed:
                assert data["parsed"]["info"]["tokenAmount"]["amount"] == "900"
                assert data["parsed"]["info"]["owner"] == str(watched.pubkey())
            else:
                raw = base64.b64decode(data[0])
                assert len(raw) == TOKEN_ACCOUNT_SIZE
                assert int.from_bytes(raw[64:72], "little") == 900


async def test_program_subscribe_rejects_bad_filters(ws_url: str) -> None:
    async with RawWs(ws_url) as ws:
        too_many = [{"dataSize": 1}] * 5
        answer = await ws.call("programSubscribe", [SYSTEM_PROGRAM, {"filters": too_many}])
        assert answer["error"]["code"] == INVALID_PARAMS
        bad_memcmp = [{"memcmp": {"offset": 0, "bytes": "0OIl" * 40}}]
        answer = await ws.call("programSubscribe", [SYSTEM_PROGRAM, {"filters": bad_memcmp}])
        assert answer["error"]["code"] == INVALID_PARAMS


async def test_signature_subscribe(client: AsyncClient, funded: Funder, ws_url: str) -> None:
    payer = await funded()
    async with RawWs(ws_url) as ws:
        signature = await send_transfer(client, payer, Keypair().pubkey(), 1_000_000)
        # Subscribing after the transaction executed still gets its notification.
        processed = await ws.subscribe(
            "signatureSubscribe", [str(signature), {"commitment": "processed"}]
        )
        finalized = await ws.subscribe("signatureSubscribe", [str(signature)])
        for sub in (processed, finalized):
            note = await ws.notification(sub)
            assert note["method"] == "signatureNotification"
            result = note["params"]["result"]
            assert_context(result)
            assert result["value"] == {"err": None}
        # A signature subscription ends with its notification.
        answer = await ws.call("signatureUnsubscribe", [finalized])
        assert answer["error"] == {"code": INVALID_PARAMS, "message": "Invalid subscription id."}

        # Received first, then the outcome of a transaction that failed on chain.
        poor = await funded(LAMPORTS_PER_SOL)
        blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
        tx = signed_tx(
            [transfer_ix(poor.pubkey(), payer.pubkey(), 2 * LAMPORTS_PER_SOL)], poor, blockhash
        )
        sub = await ws.subscribe(
            "signatureSubscribe",
            [
                str(tx.signatures[0]),
                {"commitment": "confirmed", "enableReceivedNotification": True},
            ],
        )
        await client.send_raw_transaction(bytes(tx), TxOpts(skip_preflight=True))
        received = await ws.notification(sub)
        assert received["params"]["result"]["value"] == "receivedSignature"
        outcome = await ws.notification(sub)
        err = outcome["params"]["result"]["value"]["err"]
        assert err == {"InstructionError": [0, {"Custom": 1}]}


async def test_logs_subscribe(client: AsyncClient, funded: Funder, ws_url: str) -> None:
    payer = await funded()
    mentioned = Keypair().pubkey()
    async with RawWs(ws_url) as ws:
        mentions = await ws.subscribe(
            "logsSubscribe", [{"mentions": [str(mentioned)]}, {"commitment": "processed"}]
        )
        everything = await ws.subscribe("logsSubscribe", ["all", {"commitment": "confirmed"}])
        unrelated = await send_transfer(client, payer, Keypair().pubkey(), 1_000_000)
        related = await send_transfer(client, payer, mentioned, 1_000_000)

        note = await ws.notification(mentions)
        assert note["method"] == "logsNotification"
        result = note["params"]["result"]
        assert_context(result)
        value = result["value"]
        assert set(value) == {"signature", "err", "logs"}
        # The unrelated transfer came first but does not mention the address.
        assert value["signature"] == str(related)
        assert value["err"] is None
        assert value["logs"] == [
            f"Program {SYSTEM_PROGRAM} invoke [1]",
            f"Program {SYSTEM_PROGRAM} success",
        ]
        seen: set[str] = set()
        while not {str(unrelated), str(related)} <= seen:
            note = await ws.notification(everything)
            seen.add(note["params"]["result"]["value"]["signature"])

        two = [str(mentioned), str(payer.pubkey())]
        answer = await ws.call("logsSubscribe", [{"mentions": two}])
        assert answer["error"]["code"] == INVALID_PARAMS
        assert answer["error"]["message"] == "Invalid Request: Only 1 address supported"


async def test_slot_and_root_subscribe(ws_url: str) -> None:
    async with RawWs(ws_url) as ws:
        slot_sub = await ws.subscribe("slotSubscribe")
        root_sub = await ws.subscribe("rootSubscribe")
        slots = [(await ws.notification(slot_sub))["params"]["result"] for _ in range(3)]
        for info in slots:
            assert set(info) == {"parent", "root", "slot"}
            assert info["parent"] < info["slot"]
            assert info["root"] <= info["parent"]
        assert [s["slot"] for s in slots] == sorted({s["slot"] for s in slots})
        roots = [(await ws.notification(root_sub))["params"]["result"] for _ in range(3)]
        assert all(isinstance(r, int) for r in roots)
        assert roots == sorted(set(roots))
        for sub, method in ((slot_sub, "slotUnsubscribe"), (root_sub, "rootUnsubscribe")):
            answer = await ws.call(method, [sub])
            assert answer == {"jsonrpc": "2.0", "result": True, "id": answer["id"]}


async def test_unsubscribe_stops_notifications(
    client: AsyncClient, funded: Funder, ws_url: str
) -> None:
    payer = await funded()
    target = Keypair().pubkey()
    async with RawWs(ws_url) as ws:
        config = {"encoding": "base64", "commitment": "processed"}
        old = await ws.subscribe("accountSubscribe", [str(target), config])
        # The unsubscribe method must match the subscription's kind.
        answer = await ws.call("programUnsubscribe", [old])
        assert answer["error"]["code"] == INVALID_PARAMS
        assert (await ws.call("accountUnsubscribe", [old]))["result"] is True
        assert (await ws.call("accountUnsubscribe", [old]))["error"]["code"] == INVALID_PARAMS
        new = await ws.subscribe("accountSubscribe", [str(target), config])
        await send_transfer(client, payer, target, 5 * LAMPORTS_PER_SOL)
        await ws.notification(new)
        # Messages of one connection arrive in order: nothing for the old one came first.
        assert not [m for m in ws.pending if m.get("params", {}).get("subscription") == old]


async def test_subscriptions_belong_to_their_connection(ws_url: str) -> None:
    async with RawWs(ws_url) as owner, RawWs(ws_url) as stranger:
        sub = await owner.subscribe("slotSubscribe")
        answer = await stranger.call("slotUnsubscribe", [sub])
        assert answer["error"]["code"] == INVALID_PARAMS
        await owner.notification(sub)


async def test_bad_requests_get_json_rpc_errors(ws_url: str) -> None:
    async with RawWs(ws_url) as ws:
        await ws.conn.send("{not json")
        answer = await ws.recv()
        assert answer == {
            "jsonrpc": "2.0",
            "error": {"code": PARSE_ERROR, "message": "Parse error"},
            "id": None,
        }
        answer = await ws.call("accountSubscribe", ["not-a-pubkey"])
        assert answer["error"]["code"] == INVALID_PARAMS
        answer = await ws.call("accountSubscribe", [])
        assert answer["error"]["code"] == INVALID_PARAMS
        answer = await ws.call("signatureSubscribe", ["xyz"])
        assert answer["error"]["code"] == INVALID_PARAMS
        answer = await ws.call("logsSubscribe", ["everything"])
        assert answer["error"]["code"] == INVALID_PARAMS
        answer = await ws.call("slotUnsubscribe", ["seven"])
        assert answer["error"]["code"] == INVALID_PARAMS
        # Block and vote subscriptions are off by default on solana-test-validator too.
        for method in ("blockSubscribe", "voteSubscribe", "slotsUpdatesSubscribe", "getSlot"):
            answer = await ws.call(method, [])
            assert answer["error"]["code"] == METHOD_NOT_FOUND, method
        # A batch is answered with one array; the connection still works afterwards.
        await ws.send(
            [
                {"jsonrpc": "2.0", "id": 101, "method": "slotSubscribe"},
                {"jsonrpc": "2.0", "id": 102, "method": "rootSubscribe"},
            ]
        )
        batch = await ws.recv()
        assert isinstance(batch, list)
        assert [a["id"] for a in batch] == [101, 102]
        assert all(isinstance(a["result"], int) for a in batch)
        await ws.notification(batch[0]["result"])


async def test_solana_py_websocket_client(client: AsyncClient, funded: Funder, ws_url: str) -> None:
    payer = await funded()
    target = Keypair().pubkey()
    async with connect(ws_url) as ws:
        await ws.account_subscribe(target, commitment=Confirmed, encoding="base64")
        await ws.logs_subscribe(RpcTransactionLogsFilterMentions(target), commitment=Confirmed)
        await ws.program_subscribe(Pubkey.from_string(SYSTEM_PROGRAM), commitment=Confirmed)
        await ws.slot_subscribe()
        await ws.root_subscribe()
        ids: dict[str, int] = {}
        for name in ("account", "logs", "program", "slot", "root"):
            (answer,) = await ws.recv()
            assert isinstance(answer, SubscriptionResult)
            ids[name] = answer.result
        signature = await send_transfer(client, payer, target, 2 * LAMPORTS_PER_SOL)
        await ws.signature_subscribe(signature, commitment=Confirmed)
        kinds: dict[type, Any] = {}
        wanted = {
            AccountNotification,
            LogsNotification,
            ProgramNotification,
            SignatureNotification,
            SlotNotification,
            RootNotification,
        }
        while not wanted <= set(kinds):
            for message in await ws.recv():
                if (
                    isinstance(message, ProgramNotification)
                    and message.result.value.pubkey != target
                ):
                    continue
                kinds.setdefault(type(message), message)
        account = kinds[AccountNotification]
        assert account.subscription == ids["account"]
        assert account.result.value.lamports == 2 * LAMPORTS_PER_SOL
        assert kinds[LogsNotification].result.value.signature == signature
        assert kinds[SignatureNotification].result.value.err is None
        assert kinds[ProgramNotification].result.value.account.lamports == 2 * LAMPORTS_PER_SOL
        assert kinds[SlotNotification].result.slot > kinds[SlotNotification].result.parent
        await ws.account_unsubscribe(ids["account"])
        await ws.slot_unsubscribe(ids["slot"])


@pytest.mark.fresh_localnet
async def test_ws_port_flag_and_fallback(start_localnet: Callable[..., LocalnetProcess]) -> None:
    # --ws-port picks the port; the URL is printed at start.
    port = free_port()
    net = start_localnet(extra_args=["--ws-port", str(port)])
    assert websocket_url(net) == f"ws://127.0.0.1:{port}"
    async with RawWs(websocket_url(net)) as ws:
        await ws.notification(await ws.subscribe("slotSubscribe"))

    # Without the flag it is the RPC port + 1; when that is taken, a free port (printed).
    rpc_port = free_port()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", rpc_port + 1))
        blocker.listen()
        net = start_localnet(port=rpc_port)
        url = websocket_url(net)
        assert url.startswith("ws://127.0.0.1:")
        assert url != f"ws://127.0.0.1:{rpc_port + 1}"
        async with RawWs(url) as ws:
            await ws.notification(await ws.subscribe("rootSubscribe"))
    rpc_port = free_port()
    while not port_is_free(rpc_port + 1):
        rpc_port = free_port()
    net = start_localnet(port=rpc_port)
    assert websocket_url(net) == f"ws://127.0.0.1:{rpc_port + 1}"
