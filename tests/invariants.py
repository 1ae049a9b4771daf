"""SECURITY.md's invariants as checks on a live pool, the send-or-reject helper every action of
the stateful test goes through, and the run's bookkeeping (steps, rejections, violations).

Solvency, precisely: the program caps what a position can ever be paid
(``Position::quote_close``) at its ``collateral_amount + locked_amount`` tokens of its
collateral custody, whatever the price. The pool is solvent when, for every custody, the sum of
that cap over the open positions whose collateral it holds is at most ``owned + collateral``
(the tokens of the LPs and of the traders), and the vault holds that sum plus the protocol fees
and the insurance fund, which no payout may touch. The sums are taken over the position accounts
themselves, not over the custody's own totals, so a custody that under-records what it locked is
caught even when its totals are self-consistent.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from pool_env import PoolEnv
from rejections import chain_state, error_name_in_logs, send_failing, simulate_error
from solana.rpc.commitment import Confirmed
from solana.rpc.types import MemcmpOpts, TxOpts
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID

from perpool import pda, views
from perpool.client import ViewError
from perpool.math import pricing_supply

TOKEN_ACCOUNT_SIZE = 165
TOKEN_AMOUNT_OFFSET = 64
MINT_SUPPLY_OFFSET = 36
POSITION_POOL_OFFSET = 8 + 32
"""Anchor discriminator, then ``owner``; ``pool`` follows."""
LAND_OPTS = TxOpts(skip_preflight=True, skip_confirmation=True)


class Violation(AssertionError):
    """An invariant does not hold (or the program failed in a way no rule expects)."""


# --------------------------------------------------------------------------------------------
# Bookkeeping
# --------------------------------------------------------------------------------------------


@dataclass
class RunStats:
    seed: int
    max_examples: int
    steps_per_example: int
    examples: int = 0
    steps: int = 0
    steps_per_rule: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    """Rejections by the program's error name."""
    rejections_by_rule: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    """Landed actions, liquidations by kind, actions skipped for want of a target."""
    checks: Counter[str] = field(default_factory=Counter)
    """How often each invariant was checked."""
    violations: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    duration: float = 0.0

    def rejected(self, rule: str, error: str) -> None:
        self.rejections[error] += 1
        self.rejections_by_rule[f"{rule}: {error}"] += 1

    def violation(self, rule: str, message: str, *, replay: bool) -> None:
        self.violations.append(
            {
                "example": self.examples,
                "step": self.steps,
                "rule": rule,
                "replay": replay,
                "message": message[:4_000],
            }
        )

    def finish(self) -> None:
        self.duration = time.monotonic() - self.started

    def summary(self) -> str:
        rejected = sum(self.rejections.values())
        return (
            f"stateful invariants: seed={self.seed} examples={self.examples} steps={self.steps} "
            f"rejections={rejected} violations={len(self.violations)} "
            f"duration={self.duration:.1f}s"
        )

    def report(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "max_examples": self.max_examples,
            "steps_per_example": self.steps_per_example,
            "examples": self.examples,
            "steps": self.steps,
            "steps_per_rule": dict(sorted(self.steps_per_rule.items())),
            "rejections": dict(self.rejections.most_common()),
            "rejections_by_rule": dict(sorted(self.rejections_by_rule.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "checks": dict(sorted(self.checks.items())),
            "violations": self.violations,
            "duration_sec": round(self.duration, 1),
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.report(), indent=2) + "\n")


def run_size(
    total_steps: str | None, default_examples: int, default_steps: int, max_examples: int
) -> tuple[int, int]:
    """(examples, steps per example): the defaults, or about ``total_steps`` spread over at
    most ``max_examples`` examples of between ``default_steps`` and 400 steps (long examples
    reach deeper states: drifted prices, an aged book, drained custodies)."""
    if not total_steps:
        return default_examples, default_steps
    wanted = int(total_steps)
    if wanted <= 0:
        raise ValueError(f"PERPOOL_INVARIANT_STEPS must be positive, not {total_steps!r}")
    steps = min(max(wanted // 25, default_steps), 400)
    return min(max(math.ceil(wanted / steps), 1), max_examples), steps


def pick_amount(balance: int, pick: tuple[str, int]) -> int:
    """An amount from a strategy's pick: ``("units", n)`` base units, ``("bps", n)`` of the
    balance (at least one unit), ``("all", _)`` the whole balance; never more than it."""
    kind, n = pick
    if kind == "units":
        return min(n, balance)
    if kind == "all":
        return balance
    if kind == "bps":
        return max(1, balance * n // 10_000) if balance else 0
    raise ValueError(f"unknown amount kind {kind!r}")


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def value_usd(amount: int, decimals: int, price: int, expo: int) -> Fraction:
    """Exact USD units (6 dp) of ``amount`` base units at ``price * 10^expo``: no rounding, so
    a comparison of two values is never decided by the test's own rounding."""
    return Fraction(amount * price * 10**6) * Fraction(10) ** (expo - decimals)


async def token_balances(env: PoolEnv, accounts: Sequence[Pubkey]) -> list[int]:
    """Balances of SPL token accounts in one ``getMultipleAccounts`` (0 for a missing one)."""
    out: list[int] = []
    for start in range(0, len(accounts), 100):
        chunk = list(accounts[start : start + 100])
        infos = (await env.client.connection.get_multiple_accounts(chunk, Confirmed)).value
        for info in infos:
            data = b"" if info is None else bytes(info.data)
            out.append(
                int.from_bytes(data[TOKEN_AMOUNT_OFFSET : TOKEN_AMOUNT_OFFSET + 8], "little")
            )
    return out


async def mint_holdings(env: PoolEnv, mint: Pubkey) -> tuple[int, int, int]:
    """(supply, sum over every token account of the mint, number of accounts)."""
    conn = env.client.connection
    info = (await conn.get_account_info(mint, Confirmed)).value
    assert info is not None, f"mint {mint} does not exist"
    supply = int.from_bytes(bytes(info.data)[MINT_SUPPLY_OFFSET : MINT_SUPPLY_OFFSET + 8], "little")
    filters: list[int | MemcmpOpts] = [TOKEN_ACCOUNT_SIZE, MemcmpOpts(offset=0, bytes=str(mint))]
    accounts = (
        await conn.get_program_accounts(
            TOKEN_PROGRAM_ID, Confirmed, encoding="base64", filters=filters
        )
    ).value
    held = sum(
        int.from_bytes(
            bytes(a.account.data)[TOKEN_AMOUNT_OFFSET : TOKEN_AMOUNT_OFFSET + 8], "little"
        )
        for a in accounts
    )
    return supply, held, len(accounts)


async def pool_positions(env: PoolEnv) -> list[tuple[Pubkey, Any]]:
    """Every open position of the pool: (address, decoded account)."""
    filters: list[int | MemcmpOpts] = [
        MemcmpOpts(offset=POSITION_POOL_OFFSET, bytes=str(pda.pool(env.pool)))
    ]
    found = await env.client.program.account["Position"].all(filters=filters)
    return [(p.public_key, p.account) for p in found]


async def lp_view(env: PoolEnv) -> Any | None:
    """The program's AUM view (spot/high/low AUM, LP supply, LP price), ``None`` when the view
    cannot run (a stale oracle)."""
    try:
        return await views.assets_under_management(env.client, env.pool)
    except ViewError:
        return None


# --------------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------------


async def check_token_supplies(env: PoolEnv, minted: dict[str, int]) -> None:
    """Nothing created or destroyed: each pool mint's supply is what the test minted and the
    token accounts of the mint hold exactly that; the LP tokens in accounts add up to the LP
    mint's supply."""
    for symbol, expected in minted.items():
        supply, held, _ = await mint_holdings(env, env.mint(symbol))
        if not supply == held == expected:
            raise Violation(
                f"{symbol}: minted {expected}, supply {supply}, held in accounts {held}"
            )
    lp_supply, lp_held, _ = await mint_holdings(env, pda.lp_token_mint(pda.pool(env.pool)))
    if lp_supply != lp_held:
        raise Violation(f"LP supply {lp_supply} but accounts hold {lp_held}")


async def check_solvency(env: PoolEnv, positions: Iterable[Any]) -> None:
    """The module docstring's solvency, per custody."""
    positions = list(positions)
    for symbol in env.specs:
        keys = env.client.custody_keys(env.pool, env.mint(symbol))
        custody = await env.client.fetch("Custody", keys.custody)
        a = custody.assets
        (vault,) = await token_balances(env, [keys.token_account])
        held = [p for p in positions if p.collateral_custody == keys.custody]
        max_payout = sum(p.collateral_amount + p.locked_amount for p in held)
        if max_payout > a.owned + a.collateral:
            raise Violation(
                f"{symbol}: positions may claim {max_payout} but LPs and traders own "
                f"{a.owned} + {a.collateral}"
            )
        reserved = a.protocol_fees + custody.insurance.balance
        if vault < max_payout + reserved:
            raise Violation(
                f"{symbol}: vault {vault} < max payout {max_payout} + fees and insurance {reserved}"
            )


def check_lp_price_kept(before: Any | None, after: Any | None, action: str) -> bool:
    """The LP price (AUM / LP supply with the locked LP) did not fall. Compared exactly as a
    fraction and as the program's rounded ``lp_price_usd``. Returns whether a comparison was
    possible (both views ran and LP tokens existed before and after)."""
    if before is None or after is None or before.lp_supply == 0 or after.lp_supply == 0:
        return False
    old = Fraction(before.spot_usd, pricing_supply(before.lp_supply))
    new = Fraction(after.spot_usd, pricing_supply(after.lp_supply))
    if new < old or after.lp_price_usd < before.lp_price_usd:
        raise Violation(
            f"LP price fell on {action} at a constant price: "
            f"{before.spot_usd}/{before.lp_supply} -> {after.spot_usd}/{after.lp_supply} "
            f"(view {before.lp_price_usd} -> {after.lp_price_usd})"
        )
    return True


# --------------------------------------------------------------------------------------------
# Sending: landed, or rejected by name with nothing changed
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    signature: Signature | None
    error: str | None
    """The program error's name when rejected (or the raw error when no name was logged)."""

    @property
    def ok(self) -> bool:
        return self.error is None


async def _land(
    env: PoolEnv, ixs: Sequence[Instruction], signers: Sequence[Keypair]
) -> tuple[Signature, str | None]:
    """Sends without preflight (the caller just simulated it) and waits for it to land;
    returns the signature and the error name if it failed on chain."""
    client = env.client
    conn = client.connection
    blockhash = (await conn.get_latest_blockhash(Confirmed)).value.blockhash
    all_signers = [client.payer, *[s for s in signers if s.pubkey() != client.payer.pubkey()]]
    tx = Transaction(all_signers, Message(list(ixs), client.payer.pubkey()), blockhash)
    signature = (await conn.send_raw_transaction(bytes(tx), LAND_OPTS)).value
    status = (await conn.confirm_transaction(signature, Confirmed, sleep_seconds=0.05)).value[0]
    assert status is not None
    if status.err is None:
        return signature, None
    resp = await conn.get_transaction(
        signature, commitment=Confirmed, max_supported_transaction_version=0
    )
    assert resp.value is not None
    assert resp.value.transaction.meta is not None
    named = error_name_in_logs(resp.value.transaction.meta.log_messages or [])
    return signature, named[0] if named else str(status.err)


async def attempt(
    env: PoolEnv,
    ixs: Sequence[Instruction],
    signers: Sequence[Keypair],
    *,
    allowed: Collection[str],
    watch: Sequence[Pubkey] = (),
) -> Outcome:
    """Runs an action as a user would: simulate, then land it. A failure must be one of the
    ``allowed`` program errors and change nothing (every program account, vault, LP mint and
    ``watch``ed account hashes the same before and after, the transaction having really run
    on chain, not only in preflight); anything else is a :class:`Violation`."""
    client = env.client
    before = await chain_state(client, watch)
    error = await simulate_error(client, ixs, signers)
    if error is None:
        signature, error = await _land(env, ixs, signers)
        if error is None:
            return Outcome(signature, None)
    else:
        failure = await send_failing(client, ixs, signers)
        error = failure.name or str(failure.error)
    after = await chain_state(client, watch)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        raise Violation(f"a transaction rejected with {error} changed {changed}")
    if error not in allowed:
        raise Violation(f"unexpected rejection {error} (expected one of {sorted(allowed)})")
    return Outcome(None, error)
