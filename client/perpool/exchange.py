"""A pool as its users see it: tokens by symbol, with their custody, mint and decimals.

Symbols come from the pool spec (:mod:`perpool.spec`); the custodies, their decimals and
oracles come from the chain. A pool token the spec does not name is listed under its mint
address, and any command also accepts a mint address in place of a symbol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from solana.rpc.commitment import Confirmed
from solders.instruction import AccountMeta
from solders.pubkey import Pubkey

from perpool import pda
from perpool.amounts import AmountError, to_base_units
from perpool.client import PerpoolClient, ViewError
from perpool.errors import InputError, PerpoolError, transaction_failure
from perpool.spec import PoolSpec


@dataclass(frozen=True)
class Token:
    symbol: str
    mint: Pubkey
    decimals: int
    stable: bool
    custody: Pubkey
    oracle: Pubkey
    """The oracle account the custody is configured to read."""
    account: Any
    """The decoded ``Custody`` account."""


async def fetch_decoded(client: PerpoolClient, account_type: str, address: Pubkey) -> Any | None:
    """A decoded program account, or None when it does not exist."""
    info = (await client.connection.get_account_info(address, Confirmed)).value
    if info is None:
        return None
    return client.program.coder.accounts.decode(bytes(info.data))


async def fetch_many(client: PerpoolClient, addresses: Sequence[Pubkey]) -> list[Any | None]:
    """Decoded program accounts (any type), None for those that do not exist."""
    out: list[Any | None] = []
    for start in range(0, len(addresses), 100):
        chunk = list(addresses[start : start + 100])
        infos = (await client.connection.get_multiple_accounts(chunk, Confirmed)).value
        out += [
            None if i is None else client.program.coder.accounts.decode(bytes(i.data))
            for i in infos
        ]
    return out


class Exchange:
    """One pool on one cluster, loaded once per command."""

    def __init__(
        self, client: PerpoolClient, spec: PoolSpec, pool: Any, tokens: list[Token]
    ) -> None:
        self.client = client
        self.spec = spec
        self.pool = pool
        self.tokens = tokens

    @property
    def pool_name(self) -> str:
        return self.spec.pool_name

    @property
    def pool_key(self) -> Pubkey:
        return pda.pool(self.pool_name)

    @property
    def lp_mint(self) -> Pubkey:
        return pda.lp_token_mint(self.pool_key)

    @classmethod
    async def load(cls, client: PerpoolClient, spec: PoolSpec) -> Exchange:
        pool = await fetch_decoded(client, "Pool", pda.pool(spec.pool_name))
        if pool is None:
            raise PerpoolError(
                f"pool {spec.pool_name!r} does not exist on this cluster; "
                f"create it with `perpool setup --config {spec.path}`",
                code="pool_not_found",
            )
        keys = list(pool.custodies)
        decoded = await fetch_many(client, keys)
        tokens = []
        for key, custody in zip(keys, decoded, strict=True):
            if custody is None:
                raise PerpoolError(f"pool lists custody {key}, which does not exist")
            named = next((c for c in spec.custodies if c.mint == custody.mint), None)
            tokens.append(
                Token(
                    symbol=named.symbol if named else str(custody.mint),
                    mint=custody.mint,
                    decimals=custody.decimals,
                    stable=custody.is_stable,
                    custody=key,
                    oracle=custody.oracle.oracle_account,
                    account=custody,
                )
            )
        return cls(client, spec, pool, tokens)

    def token(self, symbol: str) -> Token:
        wanted = symbol.upper()
        for token in self.tokens:
            if token.symbol.upper() == wanted or str(token.mint) == symbol:
                return token
        known = ", ".join(t.symbol for t in self.tokens)
        raise InputError(
            f"unknown symbol {symbol!r} in pool {self.pool_name!r} (known: {known})",
            code="unknown_symbol",
        )

    def stable_tokens(self) -> list[Token]:
        return [t for t in self.tokens if t.stable]

    def remaining_accounts(self) -> list[AccountMeta]:
        """Every custody, then their oracles (what the pool-valuing instructions expect)."""
        keys = [t.custody for t in self.tokens] + [t.oracle for t in self.tokens]
        return [AccountMeta(k, is_signer=False, is_writable=False) for k in keys]


def parse_amount(text: str, decimals: int, what: str, *, allow_zero: bool = False) -> int:
    try:
        return to_base_units(text, decimals, what, allow_zero=allow_zero)
    except AmountError as exc:
        raise InputError(str(exc), code="invalid_amount") from exc


async def view_or_fail(client: PerpoolClient, call: Any) -> Any:
    """Awaits a view; a failed simulation becomes a :class:`TransactionFailed` with its name."""
    try:
        return await call
    except ViewError as exc:
        raise transaction_failure(exc.err, exc.logs, client.program.idl) from exc
