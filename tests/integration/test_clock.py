"""Time control as the program sees it.

localnet_advanceClock, localnet_setClock and localnet_warpSlots.

Each test starts a validator from genesis, because ``init`` (which records the Clock's
unix_timestamp) can run only once per chain.
"""

from __future__ import annotations

from collections.abc import Callable

from anchorpy import Program, Provider, Wallet
from conftest import LAMPORTS_PER_SOL
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.types import TxOpts
from solders.keypair import Keypair
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from support import balance, send_and_confirm, signed_tx, transfer_ix

from perpool.localnet import LocalnetProcess, LocalnetRpc, airdrop
from perpool.program import PROGRAM_ID, config_pda, load_idl

DAY = 86_400
# Wall-clock seconds that may pass between reading the clock and the init transaction landing.
SLACK = 60


async def init_and_read_created_at(url: str) -> int:
    payer = Keypair()
    conn = AsyncClient(url, commitment=Confirmed, timeout=30)
    opts = TxOpts(skip_confirmation=False, preflight_commitment=Confirmed)
    program = Program(load_idl(), PROGRAM_ID, Provider(conn, Wallet(payer), opts))
    try:
        await airdrop(conn, payer.pubkey(), 10 * LAMPORTS_PER_SOL)
        pda, _ = config_pda()
        await (
            program.methods["init"]
            .accounts({"admin": payer.pubkey(), "config": pda, "system_program": SYSTEM_PROGRAM_ID})
            .rpc()
        )
        config = await program.account["Config"].fetch(pda)
        assert config.admin == payer.pubkey()
        created_at: int = config.created_at
        return created_at
    finally:
        await program.close()


async def test_advance_clock_is_observed_by_program(
    start_localnet: Callable[..., LocalnetProcess],
) -> None:
    net = start_localnet()
    async with LocalnetRpc(net.url) as rpc:
        before = (await rpc.get_clock()).unix_timestamp
        state = await rpc.advance_clock(DAY)
        assert state.unix_timestamp >= before + DAY
        assert state.unix_timestamp <= before + DAY + SLACK
        assert state.slot > 0

        created_at = await init_and_read_created_at(net.url)

        assert before + DAY <= created_at <= before + DAY + SLACK
        # The Clock sysvar account shows the advanced time as well.
        assert (await rpc.get_clock()).unix_timestamp >= before + DAY


async def test_set_clock_is_observed_by_program(
    start_localnet: Callable[..., LocalnetProcess],
) -> None:
    net = start_localnet()
    target = 2_000_000_000  # 2033-05-18
    async with LocalnetRpc(net.url) as rpc:
        state = await rpc.set_clock(target)
        assert target <= state.unix_timestamp <= target + SLACK
        created_at = await init_and_read_created_at(net.url)
        assert target <= created_at <= target + SLACK


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
