"""Table-driven hostile cases for the adversarial suite (``tests/adversarial``).

A :class:`Case` is one hostile transaction and the outcome it must have: a named error
(:meth:`Attack.rejected`) or a refusal by the runtime or another program
(:meth:`Attack.failed`). Modules build lists of cases from a world (instructions by accounts by
markets) and run them with :func:`run_cases`. The account helpers address an instruction's
accounts by their snake_case names (the IDL spells them in camelCase).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from adversary import TOKENS, Attack, World, account_names, symbol_of
from pool_env import PoolEnv
from solana.rpc.commitment import Confirmed
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID
from trade_support import Trader, add_pool, provide_liquidity

from perpool import pda, trade
from perpool.client import PerpoolClient
from perpool.trade import LONG, Market


@dataclass(frozen=True)
class Case:
    """One hostile transaction: ``error`` names the expected error (a set when it may fail at
    either of two checks); without it the transaction must fail outside the program with
    ``contains`` in its error or logs."""

    label: str
    ixs: tuple[Instruction, ...]
    signers: tuple[Keypair, ...] = ()
    error: str | frozenset[str] | None = None
    contains: str = ""
    watch: tuple[Pubkey, ...] = ()

    def __post_init__(self) -> None:
        assert (self.error is None) != (self.contains == ""), (
            f"{self.label}: a case expects a named error or a runtime failure, not both"
        )


def case(
    label: str,
    ixs: Instruction | Sequence[Instruction],
    signers: Iterable[Keypair] = (),
    *,
    error: str | Iterable[str] | None = None,
    contains: str = "",
    watch: Iterable[Pubkey] = (),
) -> Case:
    expected: str | frozenset[str] | None
    expected = error if error is None or isinstance(error, str) else frozenset(error)
    return Case(
        label,
        (ixs,) if isinstance(ixs, Instruction) else tuple(ixs),
        tuple(signers),
        expected,
        contains,
        tuple(watch),
    )


async def run_cases(attack: Attack, cases: Iterable[Case]) -> int:
    """Sends every case through ``attack``; returns how many were tried."""
    tried = 0
    for c in cases:
        if c.error is None:
            await attack.failed(c.label, c.ixs, c.signers, contains=c.contains, watch=c.watch)
        else:
            await attack.rejected(c.label, c.ixs, c.signers, error=c.error, watch=c.watch)
        tried += 1
    return tried


# ------------------------------------------------------------------------------------------
# Accounts of an instruction by name
# ------------------------------------------------------------------------------------------


def account(client: PerpoolClient, ix_name: str, ix: Instruction, name: str) -> Pubkey:
    """The key ``ix`` passes as account ``name``."""
    return ix.accounts[account_names(client, ix_name).index(name)].pubkey


def replace(
    client: PerpoolClient,
    ix_name: str,
    ix: Instruction,
    overrides: Mapping[str, Pubkey],
    *,
    writable: Mapping[str, bool] | None = None,
) -> Instruction:
    """``ix`` with the named accounts replaced (signer and writable flags kept unless
    ``writable`` says otherwise)."""
    names = account_names(client, ix_name)
    metas = list(ix.accounts)
    for name, key in overrides.items():
        index = names.index(name)
        old = metas[index]
        is_writable = old.is_writable if writable is None else writable.get(name, old.is_writable)
        metas[index] = AccountMeta(key, old.is_signer, is_writable)
    return Instruction(ix.program_id, ix.data, metas)


def remaining(client: PerpoolClient, ix_name: str, ix: Instruction) -> list[AccountMeta]:
    return list(ix.accounts[len(account_names(client, ix_name)) :])


def with_remaining(
    client: PerpoolClient, ix_name: str, ix: Instruction, metas: Sequence[AccountMeta]
) -> Instruction:
    fixed = len(account_names(client, ix_name))
    return Instruction(ix.program_id, ix.data, [*ix.accounts[:fixed], *metas])


def readonly(keys: Iterable[Pubkey]) -> list[AccountMeta]:
    return [AccountMeta(k, is_signer=False, is_writable=False) for k in keys]


def lamports_to(sender: Pubkey, recipient: Pubkey, lamports: int) -> Instruction:
    return transfer(TransferParams(from_pubkey=sender, to_pubkey=recipient, lamports=lamports))


# ------------------------------------------------------------------------------------------
# Markets of the world
# ------------------------------------------------------------------------------------------


def collateral_of(world: World, market: Market) -> str:
    return symbol_of(world.env, market.collateral_mint)


def traded_of(world: World, market: Market) -> str:
    return symbol_of(world.env, market.mint)


def position_of(world: World, market: Market, owner: Trader | Pubkey) -> Pubkey:
    key = owner.key if isinstance(owner, Trader) else owner
    return trade.position_key(world.client, market, key)


def vault(world: World, symbol: str, *, pool: str | None = None) -> Pubkey:
    env = world.env if pool in (None, world.env.pool) else world.other
    return pda.custody_token_account(pda.pool(env.pool), env.mint(symbol))


def custody(world: World, symbol: str, *, pool: str | None = None) -> Pubkey:
    env = world.env if pool in (None, world.env.pool) else world.other
    return pda.custody(pda.pool(env.pool), env.mint(symbol))


def oracle(world: World, symbol: str, *, pool: str | None = None) -> Pubkey:
    env = world.env if pool in (None, world.env.pool) else world.other
    return pda.custom_oracle(pda.pool(env.pool), env.mint(symbol))


def small_collateral(symbol: str) -> int:
    """A modest collateral amount in ``symbol``'s base units (a few hundred dollars)."""
    return {"SOL": 2 * 10**9, "ETH": 10**7, "USDC": 200 * 10**6, "USDT": 200 * 10**6}[symbol]


def open_ix(
    world: World,
    trader: Trader,
    market: Market,
    *,
    collateral: int | None = None,
    size_usd: int = 1_000 * 10**6,
) -> Instruction:
    symbol = collateral_of(world, market)
    return trade.open_position_ix(
        world.client,
        trader.key,
        market,
        collateral_amount=small_collateral(symbol) if collateral is None else collateral,
        size_usd=size_usd,
        funding_account=trader.accounts[symbol],
    )


def close_ix(world: World, trader: Trader, market: Market, close_bps: int = 10_000) -> Instruction:
    return trade.close_position_ix(
        world.client,
        trader.key,
        market,
        receiving_account=trader.accounts[collateral_of(world, market)],
        close_bps=close_bps,
    )


def add_collateral_ix(world: World, trader: Trader, market: Market) -> Instruction:
    symbol = collateral_of(world, market)
    return trade.add_collateral_ix(
        world.client,
        trader.key,
        market,
        small_collateral(symbol) // 20,
        funding_account=trader.accounts[symbol],
    )


def remove_collateral_ix(world: World, trader: Trader, market: Market) -> Instruction:
    return trade.remove_collateral_ix(
        world.client,
        trader.key,
        market,
        5 * 10**6,
        receiving_account=trader.accounts[collateral_of(world, market)],
    )


def liquidate_ix(world: World, liquidator: Trader, market: Market, owner: Trader) -> Instruction:
    symbol = collateral_of(world, market)
    return trade.liquidate_ix(
        world.client,
        liquidator.key,
        market,
        owner.key,
        receiving_account=liquidator.accounts[symbol],
        owner_receiving_account=owner.accounts[symbol],
    )


def is_long(market: Market) -> bool:
    return market.side == LONG


async def fresh_pool(
    world: World, name: str, liquidity: Mapping[str, int], *, empty: Sequence[str] = ()
) -> PoolEnv:
    """A pool of its own on the world's chain (new mints, the default custody config with prices
    valid for an hour) with ``liquidity`` deposited per symbol and custodies ``empty`` left
    without any."""
    wanted = {*liquidity, *empty}
    env = await add_pool(world.env, name, tuple(t for t in TOKENS if t.symbol in wanted))
    for symbol in env.specs:
        await env.configure(symbol, max_price_age_sec=3_600)
    for symbol, amount in liquidity.items():
        await provide_liquidity(env, symbol, amount)
    return env


async def send(
    client: PerpoolClient, ixs: Sequence[Instruction], signers: Sequence[Keypair], payer: Keypair
) -> Signature:
    """Signs and sends ``ixs`` with ``payer`` paying the fee, and waits for confirmation."""
    conn = client.connection
    blockhash = (await conn.get_latest_blockhash(Confirmed)).value.blockhash
    keys = [payer, *[s for s in signers if s.pubkey() != payer.pubkey()]]
    tx = Transaction(keys, Message(list(ixs), payer.pubkey()), blockhash)
    signature = (await conn.send_transaction(tx)).value
    await conn.confirm_transaction(signature, Confirmed, sleep_seconds=0.05)
    status = (await conn.get_signature_statuses([signature])).value[0]
    assert status is not None
    assert status.err is None, status
    return signature


async def lamports(client: PerpoolClient, key: Pubkey) -> int:
    return int((await client.connection.get_balance(key, Confirmed)).value)


__all__ = [
    "ASSOCIATED_TOKEN_PROGRAM_ID",
    "MEMO_PROGRAM_ID",
    "SYSTEM_PROGRAM_ID",
    "TOKEN_2022_PROGRAM_ID",
    "Case",
    "account",
    "add_collateral_ix",
    "case",
    "close_ix",
    "collateral_of",
    "custody",
    "fresh_pool",
    "is_long",
    "lamports",
    "lamports_to",
    "liquidate_ix",
    "open_ix",
    "oracle",
    "position_of",
    "readonly",
    "remaining",
    "remove_collateral_ix",
    "replace",
    "run_cases",
    "send",
    "small_collateral",
    "traded_of",
    "vault",
    "with_remaining",
]
