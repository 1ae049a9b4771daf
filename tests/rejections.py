"""Asserting that the program rejects a transaction, as SECURITY.md defines "rejected".

A rejected transaction fails with the expected *named* error, and a hash of every account the
program owns, every custody vault, every LP mint and any watched account is identical before
and after. The transaction is checked twice: in preflight (simulateTransaction) and then landed
on chain without preflight, so the runtime really executes it and rolls it back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from solana.rpc.commitment import Confirmed
from solana.rpc.types import TxOpts
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from solders.transaction_status import TransactionErrorInstructionError

from perpool import pda
from perpool.client import PerpoolClient, ViewError
from perpool.program import PROGRAM_ID, account_discriminator

ANCHOR_ERROR = re.compile(r"Error Code: (\w+)\. Error Number: (\d+)\.")
LAND_OPTS = TxOpts(skip_preflight=True, skip_confirmation=True)

CUSTODY_DISCRIMINATOR = account_discriminator("Custody")
POOL_DISCRIMINATOR = account_discriminator("Pool")


def _digest(owner: Pubkey, lamports: int, data: bytes) -> str:
    return hashlib.sha256(bytes(owner) + lamports.to_bytes(8, "little") + data).hexdigest()


async def chain_state(client: PerpoolClient, watch: Iterable[Pubkey] = ()) -> dict[str, str]:
    """Digest of every program-owned account, custody vault, LP mint and watched account."""
    conn = client.connection
    owned = (await conn.get_program_accounts(PROGRAM_ID, Confirmed, encoding="base64")).value
    state: dict[str, str] = {}
    extra: list[Pubkey] = list(watch)
    for keyed in owned:
        acc = keyed.account
        data = bytes(acc.data)
        state[str(keyed.pubkey)] = _digest(acc.owner, acc.lamports, data)
        if data[:8] == CUSTODY_DISCRIMINATOR:
            extra.append(client.program.coder.accounts.decode(data).token_account)
        elif data[:8] == POOL_DISCRIMINATOR:
            extra.append(pda.lp_token_mint(keyed.pubkey))
    extra = list(dict.fromkeys(extra))
    for start in range(0, len(extra), 100):
        chunk = extra[start : start + 100]
        infos = (await conn.get_multiple_accounts(chunk, Confirmed)).value
        for key, info in zip(chunk, infos, strict=True):
            state[str(key)] = (
                "closed" if info is None else _digest(info.owner, info.lamports, bytes(info.data))
            )
    return state


def changed_accounts(before: dict[str, str], after: dict[str, str]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [k for k in keys if before.get(k) != after.get(k)]


@dataclass(frozen=True)
class Failure:
    """A transaction that failed on chain."""

    error: Any
    """The transaction error (e.g. ``TransactionErrorInstructionError``)."""
    name: str | None
    """The Anchor error name from the logs (``None`` if no Anchor error was logged)."""
    code: int | None
    instruction_index: int | None
    logs: list[str]
    preflight_logs: list[str]


def error_name_in_logs(logs: Sequence[str]) -> tuple[str, int] | None:
    for line in logs:
        match = ANCHOR_ERROR.search(line)
        if match:
            return match.group(1), int(match.group(2))
    return None


def _custom_code(err: Any) -> tuple[int | None, int | None]:
    if isinstance(err, TransactionErrorInstructionError):
        code = getattr(err.err, "code", None)
        return err.index, code
    return None, None


async def send_failing(
    client: PerpoolClient,
    ixs: Sequence[Instruction],
    signers: Sequence[Keypair] = (),
    *,
    payer: Keypair | None = None,
) -> Failure:
    """Simulates, then lands ``ixs`` without preflight; both must fail the same way. The fee
    payer is ``payer`` (default: the client's)."""
    conn = client.connection
    payer = payer or client.payer
    blockhash = (await conn.get_latest_blockhash(Confirmed)).value.blockhash
    message = Message(list(ixs), payer.pubkey())
    # Only the keys the message needs sign (a hostile case may pass a signer it then drops).
    required = set(message.account_keys[: message.header.num_required_signatures])
    all_signers = [payer, *[s for s in signers if s.pubkey() != payer.pubkey()]]
    tx = Transaction([s for s in all_signers if s.pubkey() in required], message, blockhash)

    sim = (await conn.simulate_transaction(tx, sig_verify=True, commitment=Confirmed)).value
    assert sim.err is not None, "preflight accepted the transaction:\n" + "\n".join(sim.logs or [])
    preflight_logs = list(sim.logs or [])

    signature = (await conn.send_raw_transaction(bytes(tx), LAND_OPTS)).value
    status = (await conn.confirm_transaction(signature, Confirmed, sleep_seconds=0.05)).value[0]
    assert status is not None
    assert status.err is not None, "the transaction succeeded on chain after failing preflight"
    resp = await conn.get_transaction(
        signature, commitment=Confirmed, max_supported_transaction_version=0
    )
    assert resp.value is not None
    meta = resp.value.transaction.meta
    assert meta is not None
    logs = list(meta.log_messages or [])
    assert meta.err == status.err == sim.err, (meta.err, status.err, sim.err)

    index, code = _custom_code(status.err)
    named = error_name_in_logs(logs)
    # A ProgramError Anchor logs by name (e.g. InvalidAccountData when a Mint is passed as a
    # TokenAccount) fails the instruction with that error, not with a custom code.
    if named is not None and code is not None:
        assert named[1] == code, (
            f"logged error {named} but the transaction failed with {status.err}"
        )
    return Failure(
        error=status.err,
        name=named[0] if named else None,
        code=code,
        instruction_index=index,
        logs=logs,
        preflight_logs=preflight_logs,
    )


async def assert_rejected(
    client: PerpoolClient,
    ixs: Sequence[Instruction],
    signers: Sequence[Keypair] = (),
    *,
    error: str,
    watch: Iterable[Pubkey] = (),
) -> Failure:
    """The transaction fails with the Anchor error named ``error`` and changes nothing."""
    watch = list(watch)
    before = await chain_state(client, watch)
    failure = await send_failing(client, ixs, signers)
    assert failure.name == error, (
        f"expected {error}, got {failure.name} ({failure.error}):\n" + "\n".join(failure.logs)
    )
    after = await chain_state(client, watch)
    changed = changed_accounts(before, after)
    assert not changed, f"rejected transaction changed {changed}"
    return failure


async def assert_unchanged_failure(
    client: PerpoolClient,
    ixs: Sequence[Instruction],
    signers: Sequence[Keypair] = (),
    *,
    watch: Iterable[Pubkey] = (),
) -> Failure:
    """For failures that are not Anchor errors (system or token program errors): the
    transaction fails and changes nothing."""
    watch = list(watch)
    before = await chain_state(client, watch)
    failure = await send_failing(client, ixs, signers)
    after = await chain_state(client, watch)
    changed = changed_accounts(before, after)
    assert not changed, f"failed transaction changed {changed}"
    return failure


def view_error_name(exc: ViewError) -> str | None:
    named = error_name_in_logs(exc.logs)
    return named[0] if named else None


async def simulate_error(
    client: PerpoolClient, ixs: Sequence[Instruction], signers: Sequence[Keypair] = ()
) -> str | None:
    """Simulates ``ixs``: ``None`` if they would succeed, else the Anchor error name (or the raw
    error as a string when no Anchor error was logged)."""
    conn = client.connection
    blockhash = (await conn.get_latest_blockhash(Confirmed)).value.blockhash
    all_signers = [client.payer, *[s for s in signers if s.pubkey() != client.payer.pubkey()]]
    tx = Transaction(all_signers, Message(list(ixs), client.payer.pubkey()), blockhash)
    sim = (await conn.simulate_transaction(tx, sig_verify=True, commitment=Confirmed)).value
    if sim.err is None:
        return None
    named = error_name_in_logs(sim.logs or [])
    return named[0] if named else str(sim.err)
