"""The pool's accounting invariants, checked against chain state.

For every custody of a pool (SECURITY.md, "Invariants"):

* the vault holds ``owned + collateral + protocol_fees + insurance.balance``;
* ``0 <= locked <= owned``;
* the long and short book totals (open positions, size, collateral USD, size over entry price)
  equal the sums over the open positions of that custody;
* ``collateral`` and ``locked`` equal the sums over the positions whose collateral it holds.

:func:`check_pool` reports every violation instead of stopping at the first one, so a load
test or a monitoring script can print them all. Read it on a quiescent pool: the positions come
from one ``getProgramAccounts`` and the custodies and vaults from one ``getMultipleAccounts``,
which are two snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from perpool import pda
from perpool.client import PerpoolClient
from perpool.errors import PerpoolError
from perpool.program import PROGRAM_ID, pool_position_filters
from perpool.quotes import size_over_entry

"""Anchor discriminator, then ``owner``; the ``pool`` address follows."""
TOKEN_AMOUNT_OFFSET = 64
"""SPL token account layout: mint (32), owner (32), amount (u64 LE)."""


@dataclass(frozen=True)
class Violation:
    custody: str
    """The custody's symbol when known, else its address."""
    check: str
    expected: int
    actual: int

    def to_json(self) -> dict[str, Any]:
        return {
            "custody": self.custody,
            "check": self.check,
            "expected": str(self.expected),
            "actual": str(self.actual),
        }

    def __str__(self) -> str:
        return f"{self.custody}: {self.check}: expected {self.expected}, found {self.actual}"


@dataclass(frozen=True)
class CustodyBalances:
    """A custody's token accounting (base units) and its book, as read for the check."""

    name: str
    custody: Pubkey
    vault: int
    owned: int
    locked: int
    collateral: int
    protocol_fees: int
    insurance: int
    long_positions: int
    short_positions: int

    def to_json(self) -> dict[str, Any]:
        return {
            "custody": str(self.custody),
            "vault": str(self.vault),
            "owned": str(self.owned),
            "locked": str(self.locked),
            "collateral": str(self.collateral),
            "protocolFees": str(self.protocol_fees),
            "insurance": str(self.insurance),
            "longPositions": self.long_positions,
            "shortPositions": self.short_positions,
        }


@dataclass
class PoolCheck:
    pool: str
    slot: int
    """Slot of the custody and vault snapshot."""
    positions: int
    custodies: list[CustodyBalances] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "pool": self.pool,
            "slot": self.slot,
            "positions": self.positions,
            "custodies": {c.name: c.to_json() for c in self.custodies},
            "violations": [v.to_json() for v in self.violations],
        }


def _side(position: Any) -> str:
    return type(position.side).__name__.lower()


async def pool_positions(client: PerpoolClient, pool_key: Pubkey) -> list[Any]:
    """Every open position of the pool, decoded (``getProgramAccounts`` filtered on the
    ``Position`` discriminator and the pool address)."""
    filters: list[Any] = pool_position_filters(pool_key)
    resp = await client.connection.get_program_accounts(
        PROGRAM_ID, commitment=Confirmed, encoding="base64", filters=filters
    )
    coder = client.program.coder.accounts
    return [coder.decode(bytes(item.account.data)) for item in resp.value]


async def check_pool(
    client: PerpoolClient, pool_name: str, *, names: Mapping[Pubkey, str] | None = None
) -> PoolCheck:
    """Checks every custody of ``pool_name``; ``names`` maps mints to display names."""
    pool_key = pda.pool(pool_name)
    coder = client.program.coder.accounts
    positions = await pool_positions(client, pool_key)
    pool_info = (await client.connection.get_account_info(pool_key, Confirmed)).value
    if pool_info is None:
        raise PerpoolError(f"pool {pool_name!r} does not exist", code="pool_not_found")
    custody_keys = list(coder.decode(bytes(pool_info.data)).custodies)
    custodies: list[tuple[Pubkey, Any]] = []
    slot = 0
    for start in range(0, len(custody_keys), 50):
        chunk = custody_keys[start : start + 50]
        resp = await client.connection.get_multiple_accounts(chunk, Confirmed)
        decoded = []
        for key, info in zip(chunk, resp.value, strict=True):
            if info is None:
                raise PerpoolError(f"pool {pool_name!r} lists custody {key}, which does not exist")
            decoded.append((key, coder.decode(bytes(info.data))))
        # The vaults in a second read: a custody names its own token account.
        vaults = await client.connection.get_multiple_accounts(
            [c.token_account for _, c in decoded], Confirmed
        )
        slot = max(slot, vaults.context.slot)
        for (key, custody), vault in zip(decoded, vaults.value, strict=True):
            amount = (
                -1
                if vault is None
                else int.from_bytes(
                    bytes(vault.data)[TOKEN_AMOUNT_OFFSET : TOKEN_AMOUNT_OFFSET + 8], "little"
                )
            )
            custodies.append((key, (custody, amount)))
    report = PoolCheck(pool=pool_name, slot=slot, positions=len(positions))
    for key, (custody, vault) in custodies:
        name = (names or {}).get(custody.mint, str(custody.mint))
        _check_custody(report, name, key, custody, vault, positions)
    return report


def _check_custody(
    report: PoolCheck, name: str, key: Pubkey, custody: Any, vault: int, positions: list[Any]
) -> None:
    a = custody.assets
    fund = int(custody.insurance.balance)
    book = [p for p in positions if p.custody == key]
    longs = [p for p in book if _side(p) == "long"]
    shorts = [p for p in book if _side(p) == "short"]
    report.custodies.append(
        CustodyBalances(
            name=name,
            custody=key,
            vault=vault,
            owned=int(a.owned),
            locked=int(a.locked),
            collateral=int(a.collateral),
            protocol_fees=int(a.protocol_fees),
            insurance=fund,
            long_positions=len(longs),
            short_positions=len(shorts),
        )
    )

    def check(what: str, expected: int, actual: int) -> None:
        if expected != actual:
            report.violations.append(Violation(name, what, expected, actual))

    check(
        "vault == owned + collateral + protocol_fees + insurance",
        int(a.owned + a.collateral + a.protocol_fees) + fund,
        vault,
    )
    if a.locked < 0:
        report.violations.append(Violation(name, "locked >= 0", 0, int(a.locked)))
    if a.locked > a.owned:
        report.violations.append(Violation(name, "locked <= owned", int(a.owned), int(a.locked)))
    for side, totals, rows in (("long", custody.longs, longs), ("short", custody.shorts, shorts)):
        check(f"{side} open_positions", len(rows), int(totals.open_positions))
        check(f"{side} size_usd", sum(int(p.size_usd) for p in rows), int(totals.size_usd))
        check(
            f"{side} collateral_usd",
            sum(int(p.collateral_usd) for p in rows),
            int(totals.collateral_usd),
        )
        check(
            f"{side} size_over_entry",
            sum(size_over_entry(int(p.size_usd), int(p.price)) for p in rows),
            int(totals.size_over_entry),
        )
    held = [p for p in positions if p.collateral_custody == key]
    check(
        "collateral == sum of positions' collateral",
        sum(int(p.collateral_amount) for p in held),
        int(a.collateral),
    )
    check(
        "locked == sum of positions' locked", sum(int(p.locked_amount) for p in held), int(a.locked)
    )
