"""Helpers shared by the integration tests (plain functions, no fixtures)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from perpool.localnet import LocalnetRpc

FEE_PER_SIGNATURE = 5000
LAMPORTS_PER_SOL = 1_000_000_000
TOKEN_ACCOUNT_SIZE = 165
MINT_SIZE = 82


def signed_tx(
    instructions: Sequence[Instruction],
    payer: Keypair,
    blockhash: Hash,
    extra_signers: Sequence[Keypair] = (),
) -> Transaction:
    message = Message(list(instructions), payer.pubkey())
    return Transaction([payer, *extra_signers], message, blockhash)


def transfer_ix(sender: Pubkey, recipient: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=sender, to_pubkey=recipient, lamports=lamports))


async def send_and_confirm(client: AsyncClient, tx: Transaction) -> Signature:
    signature = (await client.send_raw_transaction(bytes(tx))).value
    await client.confirm_transaction(signature, Confirmed, sleep_seconds=0.1)
    return signature


async def transaction_logs(client: AsyncClient, signature: Signature) -> list[str]:
    resp = await client.get_transaction(
        signature, commitment=Confirmed, max_supported_transaction_version=0
    )
    assert resp.value is not None, f"getTransaction({signature}) returned null"
    meta = resp.value.transaction.meta
    assert meta is not None
    assert meta.log_messages is not None
    return list(meta.log_messages)


async def balance(client: AsyncClient, pubkey: Pubkey) -> int:
    return (await client.get_balance(pubkey, Confirmed)).value


async def token_amount(client: AsyncClient, account: Pubkey) -> int:
    return int((await client.get_token_account_balance(account, Confirmed)).value.amount)


async def wait_for_block_height(client: AsyncClient, target: int, timeout: float = 60.0) -> int:
    """Poll getBlockHeight (processed) until it reaches ``target``; return the height seen."""
    deadline = time.monotonic() + timeout
    while True:
        height = (await client.get_block_height(Processed)).value
        if height >= target:
            return height
        if time.monotonic() > deadline:
            raise AssertionError(f"block height {height} did not reach {target} within {timeout}s")
        await asyncio.sleep(0.01)


async def advance_clock_confirmed(rpc: LocalnetRpc, seconds: int, timeout: float = 10.0) -> int:
    """Advance the Clock and wait until confirmed reads (what clients simulate against) show it."""
    target = (await rpc.advance_clock(seconds)).unix_timestamp
    deadline = time.monotonic() + timeout
    while True:
        seen = (await rpc.get_clock("confirmed")).unix_timestamp
        if seen >= target:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"confirmed clock {seen} did not reach {target} within {timeout}s")
        await asyncio.sleep(0.02)


class RawWs:
    """A bare JSON-RPC websocket client, to see the pubsub messages exactly as sent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: ClientConnection | None = None
        self._next_id = 0
        self.pending: list[dict[str, Any]] = []

    async def __aenter__(self) -> RawWs:
        self._conn = await ws_connect(self.url, max_size=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    @property
    def conn(self) -> ClientConnection:
        assert self._conn is not None, "not connected"
        return self._conn

    async def send(self, payload: Any) -> None:
        await self.conn.send(json.dumps(payload))

    async def recv(self, timeout: float = 30.0) -> Any:
        return json.loads(await asyncio.wait_for(self.conn.recv(), timeout))

    async def call(self, method: str, params: list[Any] | None = None) -> dict[str, Any]:
        """Send one request and return its answer (notifications meanwhile are kept)."""
        self._next_id += 1
        request_id = self._next_id
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        await self.send(request)
        while True:
            message = await self.recv()
            if isinstance(message, dict) and message.get("id") == request_id:
                return message
            self.pending.append(message)

    async def subscribe(self, method: str, params: list[Any] | None = None) -> int:
        answer = await self.call(method, params)
        assert "result" in answer, answer
        assert isinstance(answer["result"], int), answer
        return int(answer["result"])

    async def notification(
        self, subscription: int, timeout: float = 30.0, match: Any = None
    ) -> dict[str, Any]:
        """The next notification of ``subscription`` (for which ``match(result)`` holds)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, message in enumerate(self.pending):
                if _is_notification(message, subscription, match):
                    return dict(self.pending.pop(i))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no notification for subscription {subscription}")
            try:
                self.pending.append(await self.recv(remaining))
            except TimeoutError:
                continue

    async def drain(self, seconds: float) -> list[dict[str, Any]]:
        """Everything that arrives within ``seconds`` (plus what was kept)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self.pending.append(await self.recv(remaining))
            except TimeoutError:
                break
        out, self.pending = self.pending, []
        return out


def _is_notification(message: Any, subscription: int, match: Any) -> bool:
    if not isinstance(message, dict) or "method" not in message:
        return False
    params = message.get("params") or {}
    if params.get("subscription") != subscription:
        return False
    return match is None or bool(match(params.get("result")))
