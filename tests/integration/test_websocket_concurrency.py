"""Many concurrent subscribers, and clients that vanish, do not disturb each other."""

from __future__ import annotations

import asyncio
import json
import socket

from conftest import Funder, Localnet
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from support import LAMPORTS_PER_SOL, RawWs, signed_tx, transfer_ix
from websockets.asyncio.client import connect as ws_connect

from perpool.localnet import LocalnetRpc

SUBSCRIBERS = 200


async def transfer(client: AsyncClient, payer: Keypair, to: Keypair, lamports: int) -> None:
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    tx = signed_tx([transfer_ix(payer.pubkey(), to.pubkey(), lamports)], payer, blockhash)
    await client.send_raw_transaction(bytes(tx))


async def test_many_subscribers_and_an_abrupt_disconnect(
    client: AsyncClient, funded: Funder, ws_url: str, localnet: Localnet
) -> None:
    payer = await funded(100 * LAMPORTS_PER_SOL)
    target = Keypair()
    params = [str(target.pubkey()), {"encoding": "base64", "commitment": "processed"}]

    subscribers = [RawWs(ws_url) for _ in range(SUBSCRIBERS)]
    await asyncio.gather(*(ws.__aenter__() for ws in subscribers))
    try:
        ids = await asyncio.gather(
            *(ws.subscribe("accountSubscribe", params) for ws in subscribers)
        )
        assert len(set(ids)) == SUBSCRIBERS

        # One client subscribes to the same account, then its connection dies without a
        # close handshake (the TCP connection is reset).
        vanishing = await ws_connect(ws_url)
        await vanishing.send(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "accountSubscribe", "params": params})
        )
        assert "result" in json.loads(await vanishing.recv())
        sock = vanishing.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        vanishing.transport.abort()

        # And one client subscribes and never reads again.
        silent = await ws_connect(ws_url)
        await silent.send(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "slotSubscribe", "params": []})
        )

        for round_, lamports in enumerate((LAMPORTS_PER_SOL, 2 * LAMPORTS_PER_SOL), start=1):
            await transfer(client, payer, target, lamports)
            expected = LAMPORTS_PER_SOL if round_ == 1 else 3 * LAMPORTS_PER_SOL
            notes = await asyncio.gather(
                *(
                    ws.notification(
                        sub, timeout=60, match=lambda r, e=expected: r["value"]["lamports"] == e
                    )
                    for ws, sub in zip(subscribers, ids, strict=True)
                )
            )
            assert len(notes) == SUBSCRIBERS

        # Half of the subscribers leave abruptly; the rest keep getting notifications.
        for ws in subscribers[::2]:
            ws.conn.transport.abort()
        kept = list(zip(subscribers[1::2], ids[1::2], strict=True))
        await transfer(client, payer, target, 3 * LAMPORTS_PER_SOL)
        await asyncio.gather(
            *(
                ws.notification(
                    sub, timeout=60, match=lambda r: r["value"]["lamports"] == 6 * LAMPORTS_PER_SOL
                )
                for ws, sub in kept
            )
        )
        await silent.close()
    finally:
        await asyncio.gather(*(ws.close() for ws in subscribers), return_exceptions=True)

    async with LocalnetRpc(localnet.url) as rpc:
        assert await rpc.health() == "ok"
    async with RawWs(ws_url) as ws:
        await ws.notification(await ws.subscribe("slotSubscribe"))
