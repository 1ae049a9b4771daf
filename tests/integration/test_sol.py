"""SOL through solana-py's AsyncClient: airdrop, transfer, confirm, fees, commitment levels."""

from __future__ import annotations

import asyncio

from conftest import Funder, Localnet
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from support import (
    FEE_PER_SIGNATURE,
    LAMPORTS_PER_SOL,
    balance,
    send_and_confirm,
    signed_tx,
    transaction_logs,
    transfer_ix,
)

from perpool.localnet import airdrop


async def test_airdrop_credits_exact_amount(client: AsyncClient) -> None:
    recipient = Keypair()
    assert await balance(client, recipient.pubkey()) == 0
    await airdrop(client, recipient.pubkey(), 3 * LAMPORTS_PER_SOL)
    assert await balance(client, recipient.pubkey()) == 3 * LAMPORTS_PER_SOL
    account = (await client.get_account_info(recipient.pubkey(), Confirmed)).value
    assert account is not None
    assert account.owner == SYSTEM_PROGRAM_ID
    assert account.data == b""


async def test_transfer_moves_lamports_and_charges_one_fee(
    client: AsyncClient, funded: Funder
) -> None:
    sender = await funded(2 * LAMPORTS_PER_SOL)
    recipient = Keypair()
    amount = LAMPORTS_PER_SOL // 2
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    tx = signed_tx([transfer_ix(sender.pubkey(), recipient.pubkey(), amount)], sender, blockhash)
    signature = await send_and_confirm(client, tx)

    assert (
        await balance(client, sender.pubkey()) == 2 * LAMPORTS_PER_SOL - amount - FEE_PER_SIGNATURE
    )
    assert await balance(client, recipient.pubkey()) == amount

    resp = await client.get_transaction(signature, commitment=Confirmed)
    assert resp.value is not None
    meta = resp.value.transaction.meta
    assert meta is not None
    assert meta.err is None
    assert meta.fee == FEE_PER_SIGNATURE
    assert meta.pre_balances[:2] == [2 * LAMPORTS_PER_SOL, 0]
    assert meta.post_balances[:2] == [
        2 * LAMPORTS_PER_SOL - amount - FEE_PER_SIGNATURE,
        amount,
    ]
    assert resp.value.slot > 0
    logs = await transaction_logs(client, signature)
    assert logs == [
        "Program 11111111111111111111111111111111 invoke [1]",
        "Program 11111111111111111111111111111111 success",
    ]


async def test_fee_is_charged_per_signature(client: AsyncClient, funded: Funder) -> None:
    payer = await funded(LAMPORTS_PER_SOL)
    cosigner = await funded(LAMPORTS_PER_SOL)
    recipient = Keypair()
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    instructions = [
        transfer_ix(payer.pubkey(), recipient.pubkey(), 1_000_000),
        transfer_ix(cosigner.pubkey(), recipient.pubkey(), 2_000_000),
    ]
    message = Message.new_with_blockhash(instructions, payer.pubkey(), blockhash)
    assert (await client.get_fee_for_message(message)).value == 2 * FEE_PER_SIGNATURE

    await send_and_confirm(client, signed_tx(instructions, payer, blockhash, [cosigner]))
    assert (
        await balance(client, payer.pubkey())
        == LAMPORTS_PER_SOL - 1_000_000 - 2 * FEE_PER_SIGNATURE
    )
    assert await balance(client, cosigner.pubkey()) == LAMPORTS_PER_SOL - 2_000_000
    assert await balance(client, recipient.pubkey()) == 3_000_000


async def test_fee_for_single_signature_message(client: AsyncClient) -> None:
    payer = Keypair()
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    message = MessageV0.try_compile(
        payer.pubkey(), [transfer_ix(payer.pubkey(), Keypair().pubkey(), 1)], [], blockhash
    )
    assert (await client.get_fee_for_message(message)).value == FEE_PER_SIGNATURE


async def test_commitment_levels_all_reach_the_transaction(
    client: AsyncClient, funded: Funder
) -> None:
    sender = await funded(LAMPORTS_PER_SOL)
    recipient = Keypair()
    blockhash = (await client.get_latest_blockhash(Processed)).value.blockhash
    tx = signed_tx([transfer_ix(sender.pubkey(), recipient.pubkey(), 1_007_777)], sender, blockhash)
    signature = (await client.send_raw_transaction(bytes(tx))).value
    # Each level is confirmed in turn; a slot is finalized once frozen on this localnet.
    slot = 0
    for rank, level in enumerate((Processed, Confirmed, Finalized)):
        statuses = await client.confirm_transaction(signature, level, sleep_seconds=0.1)
        status = statuses.value[0]
        assert status is not None
        assert status.err is None
        assert status.confirmation_status is not None
        assert int(status.confirmation_status) >= rank
        slot = status.slot
    assert (await client.get_balance(recipient.pubkey(), Finalized)).value == 1_007_777
    block_time = (await client.get_block_time(slot)).value
    assert block_time is not None
    assert block_time > 1_600_000_000


async def test_faucet_keypair_signs_transfers(client: AsyncClient, localnet: Localnet) -> None:
    faucet = localnet.faucet
    before = await balance(client, faucet.pubkey())
    assert before > 100 * LAMPORTS_PER_SOL
    recipient = Keypair()
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    await send_and_confirm(
        client,
        signed_tx([transfer_ix(faucet.pubkey(), recipient.pubkey(), 1_012_345)], faucet, blockhash),
    )
    assert await balance(client, recipient.pubkey()) == 1_012_345


async def test_chain_progresses(client: AsyncClient) -> None:
    first_slot = (await client.get_slot(Processed)).value
    first_height = (await client.get_block_height(Processed)).value
    first_hash = (await client.get_latest_blockhash(Processed)).value
    await asyncio.sleep(1.0)
    assert (await client.get_slot(Processed)).value > first_slot
    assert (await client.get_block_height(Processed)).value > first_height
    latest = (await client.get_latest_blockhash(Processed)).value
    assert latest.blockhash != first_hash.blockhash
    assert latest.last_valid_block_height > first_hash.last_valid_block_height
    epoch = (await client.get_epoch_info()).value
    assert epoch.absolute_slot >= first_slot
    version = (await client.get_version()).value
    assert version.solana_core
