"""Time control as the program sees it.

localnet_advanceClock, localnet_setClock and localnet_warpSlots.

Each test starts a validator from genesis, because ``init`` (which records the Clock's
unix_timestamp as ``Perpool.inception_time``) can run only once per chain.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import LAMPORTS_PER_SOL
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solders.keypair import Keypair
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from support import advance_clock_confirmed, balance, send_and_confirm, signed_tx, transfer_ix

from perpool import pda, views
from perpool.client import PerpoolClient, ViewError
from perpool.custody_config import custody_config
from perpool.localnet import LocalnetProcess, LocalnetRpc, airdrop

DAY = 86_400
# Wall-clock seconds that may pass between reading the clock and a transaction landing.
SLACK = 60


async def connect(url: str) -> PerpoolClient:
    payer = Keypair()
    client = PerpoolClient.connect(url, payer)
    await airdrop(client.connection, payer.pubkey(), 10 * LAMPORTS_PER_SOL)
    return client


async def init_and_read_inception_time(client: PerpoolClient) -> int:
    admin = client.payer.pubkey()
    await client.init([admin], 1, admin)
    perpool = await client.fetch("Perpool", pda.perpool())
    assert perpool.oracle_authority == admin
    inception: int = perpool.inception_time
    return inception


async def test_advance_clock_is_observed_by_program(
    start_localnet: Callable[..., LocalnetProcess],
) -> None:
    net = start_localnet()
    client = await connect(net.url)
    try:
        async with LocalnetRpc(net.url) as rpc:
            before = (await rpc.get_clock()).unix_timestamp
            state = await rpc.advance_clock(DAY)
            assert state.unix_timestamp >= before + DAY
            assert state.unix_timestamp <= before + DAY + SLACK
            assert state.slot > 0

            inception = await init_and_read_inception_time(client)

            assert before + DAY <= inception <= before + DAY + SLACK
            # The Clock sysvar account shows the advanced time as well.
            assert (await rpc.get_clock()).unix_timestamp >= before + DAY
    finally:
        await client.close()


async def test_oracle_validation_uses_the_advanced_clock(
    start_localnet: Callable[..., LocalnetProcess],
) -> None:
    """A publish time a day ahead of the wall clock is accepted once the chain clock is there;
    advancing past the custody's max price age makes the same price stale."""
    net = start_localnet()
    client = await connect(net.url)
    admin = client.payer
    try:
        await init_and_read_inception_time(client)
        await client.add_pool("main", admin)
        token = await AsyncToken.create_mint(
            client.connection, admin, admin.pubkey(), 9, TOKEN_PROGRAM_ID
        )
        oracle = pda.custom_oracle(pda.pool("main"), token.pubkey)
        config = custody_config(oracle, client_types=client.program.type, max_price_age_sec=60)
        await client.add_custody("main", token.pubkey, False, config, admin)
        async with LocalnetRpc(net.url) as rpc:
            wall = (await rpc.get_clock("confirmed")).unix_timestamp
            await advance_clock_confirmed(rpc, DAY)
            publish = wall + DAY - 1
            await client.set_price(
                "main",
                token.pubkey,
                admin,
                price=150_00,
                expo=-2,
                conf=0,
                ema=150_00,
                publish_time=publish,
            )
            view = await views.oracle_price(client, "main", token.pubkey)
            assert view.price_usd_e9 == 150 * 10**9

            await advance_clock_confirmed(rpc, 61)
            with pytest.raises(ViewError) as excinfo:
                await views.oracle_price(client, "main", token.pubkey)
            logs = excinfo.value.logs
            assert any("Error Code: StaleOraclePrice" in line for line in logs), logs
    finally:
        await client.close()


async def test_set_clock_is_observed_by_program(
    start_localnet: Callable[..., LocalnetProcess],
) -> None:
    net = start_localnet()
    target = 2_000_000_000  # 2033-05-18
    client = await connect(net.url)
    try:
        async with LocalnetRpc(net.url) as rpc:
            state = await rpc.set_clock(target)
            assert target <= state.unix_timestamp <= target + SLACK
            inception = await init_and_read_inception_time(client)
            assert target <= inception <= target + SLACK
    finally:
        await client.close()


async def test_advance_clock_accumulates(start_localnet: Callable[..., LocalnetProcess]) -> None:
    net = start_localnet()
    async with LocalnetRpc(net.url) as rpc:
        before = (await rpc.get_clock()).unix_timestamp
        first = await rpc.advance_clock(3_600)
        second = await rpc.advance_clock(3_600)
        assert second.unix_timestamp >= first.unix_timestamp + 3_600
        assert before + 7_200 <= second.unix_timestamp <= before + 7_200 + SLACK


async def test_warp_slots_then_transactions_still_work(
    start_localnet: Callable[..., LocalnetProcess],
) -> None:
    net = start_localnet()
    async with LocalnetRpc(net.url) as rpc, AsyncClient(net.url, commitment=Confirmed) as client:
        slot_before = (await client.get_slot(Processed)).value
        state = await rpc.warp_slots(1_000)
        assert state.slot >= slot_before + 1_000
        assert (await client.get_slot(Processed)).value >= slot_before + 1_000
        assert (await rpc.get_clock()).slot >= slot_before + 1_000

        sender = Keypair()
        await airdrop(client, sender.pubkey(), LAMPORTS_PER_SOL)
        recipient = Keypair().pubkey()
        blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
        await send_and_confirm(
            client,
            signed_tx([transfer_ix(sender.pubkey(), recipient, 1_001_234)], sender, blockhash),
        )
        assert await balance(client, recipient) == 1_001_234
