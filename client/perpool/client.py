"""Async client of the Perpool program: instruction builders, sending, account fetches, views.

Every amount is an integer in on-chain units (token base units, USD with 6 decimals, prices
with 9 decimals); conversion from human units belongs to the callers (CLI, keeper).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from anchorpy import Context, Program, Provider, Wallet
from anchorpy_core.idl import IdlTypeSimple
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.types import TxOpts
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.sysvar import RENT
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID

from perpool import pda
from perpool.program import PROGRAM_ID, load_idl

SEND_OPTS = TxOpts(skip_confirmation=False, preflight_commitment=Confirmed)
# `send` confirms itself, polling getSignatureStatuses faster than solana-py's 0.5 s default.
SEND_NO_CONFIRM_OPTS = TxOpts(skip_confirmation=True, preflight_commitment=Confirmed)
CONFIRM_POLL_SECONDS = 0.05


class ViewError(RuntimeError):
    """A view instruction failed in simulation; ``logs`` has the program's log lines."""

    def __init__(self, err: object, logs: list[str]) -> None:
        super().__init__(f"view failed: {err}")
        self.err = err
        self.logs = logs


def instruction_hash(name: str, accounts: Sequence[Pubkey], args: bytes) -> bytes:
    """sha256 an admin approval is bound to (mirror of ``Multisig::instruction_hash``)."""
    digest = hashlib.sha256(b"perpool:" + name.encode())
    for key in accounts:
        digest.update(bytes(key))
    digest.update(args)
    return digest.digest()


@dataclass(frozen=True)
class CustodyKeys:
    pool: Pubkey
    mint: Pubkey
    custody: Pubkey
    token_account: Pubkey
    oracle: Pubkey


class PerpoolClient:
    """One connection and payer; methods return signatures, decoded accounts or view results."""

    def __init__(self, program: Program, payer: Keypair) -> None:
        self.program = program
        self.payer = payer
        self.view_payer: Pubkey | None = None
        """Fee payer of view simulations when ``payer`` has no account (read-only users)."""

    @classmethod
    def connect(cls, url: str, payer: Keypair, *, timeout: float = 30.0) -> PerpoolClient:
        conn = AsyncClient(url, commitment=Confirmed, timeout=timeout)
        provider = Provider(conn, Wallet(payer), SEND_OPTS)
        return cls(Program(load_idl(), PROGRAM_ID, provider), payer)

    @property
    def connection(self) -> AsyncClient:
        return self.program.provider.connection

    async def close(self) -> None:
        await self.program.close()

    # ---- plumbing -------------------------------------------------------------------------

    def ix(
        self,
        name: str,
        *args: Any,
        accounts: dict[str, Pubkey],
        remaining: Sequence[AccountMeta] = (),
    ) -> Instruction:
        ctx = Context(accounts=accounts, remaining_accounts=list(remaining))
        built: Instruction = self.program.instruction[name](*args, ctx=ctx)
        return built

    async def send(self, ixs: Sequence[Instruction], signers: Sequence[Keypair] = ()) -> Signature:
        """Signs with the payer and ``signers``, sends with preflight, waits for confirmation."""
        blockhash = (await self.connection.get_latest_blockhash(Confirmed)).value.blockhash
        all_signers = [self.payer, *[s for s in signers if s.pubkey() != self.payer.pubkey()]]
        tx = Transaction(all_signers, Message(list(ixs), self.payer.pubkey()), blockhash)
        resp = await self.connection.send_transaction(tx, opts=SEND_NO_CONFIRM_OPTS)
        await self.connection.confirm_transaction(
            resp.value, Confirmed, sleep_seconds=CONFIRM_POLL_SECONDS
        )
        return resp.value

    async def view(
        self,
        name: str,
        *args: Any,
        accounts: dict[str, Pubkey],
        remaining: Sequence[AccountMeta] = (),
    ) -> Any:
        """Simulates a view instruction and decodes its return data with the IDL."""
        ix = self.ix(name, *args, accounts=accounts, remaining=remaining)
        blockhash = (await self.connection.get_latest_blockhash(Confirmed)).value.blockhash
        if self.view_payer is None:
            tx = Transaction([self.payer], Message([ix], self.payer.pubkey()), blockhash)
        else:
            # Unsigned: simulated without signature verification, never sent.
            message = Message.new_with_blockhash([ix], self.view_payer, blockhash)
            tx = Transaction.new_unsigned(message)
        sim = (
            await self.connection.simulate_transaction(tx, sig_verify=False, commitment=Confirmed)
        ).value
        if sim.err is not None:
            raise ViewError(sim.err, list(sim.logs or []))
        if sim.return_data is None:
            raise ViewError("no return data", list(sim.logs or []))
        return self._decode_return(name, bytes(sim.return_data.data))

    def _decode_return(self, name: str, data: bytes) -> Any:
        idl_ix = next(i for i in self.program.idl.instructions if _snake(i.name) == name)
        returns = idl_ix.returns
        # anchorpy parses primitive return types as IdlTypeSimple members, not strings.
        if returns in ("u64", IdlTypeSimple.U64):
            return int.from_bytes(data[:8], "little")
        if returns in ("bool", IdlTypeSimple.Bool):
            return data[0] != 0
        defined = getattr(returns, "defined", None)
        if defined is None:
            raise ValueError(f"unsupported return type of {name}: {returns!r}")
        return self.program.coder.types.decode(defined, data)

    # ---- keys and accounts ----------------------------------------------------------------

    def custody_keys(self, pool_name: str, mint: Pubkey) -> CustodyKeys:
        pool_key = pda.pool(pool_name)
        return CustodyKeys(
            pool=pool_key,
            mint=mint,
            custody=pda.custody(pool_key, mint),
            token_account=pda.custody_token_account(pool_key, mint),
            oracle=pda.custom_oracle(pool_key, mint),
        )

    async def fetch(self, account_type: str, address: Pubkey) -> Any:
        return await self.program.account[account_type].fetch(address, Confirmed)

    async def custody_oracle(self, pool_name: str, mint: Pubkey) -> Pubkey:
        """The oracle account a custody is configured to read (custom oracle PDA or Pyth)."""
        custody = await self.fetch("Custody", self.custody_keys(pool_name, mint).custody)
        oracle: Pubkey = custody.oracle.oracle_account
        return oracle

    async def pool_remaining_accounts(self, pool_name: str) -> list[AccountMeta]:
        """Every custody of the pool, then their oracles (what AUM instructions expect)."""
        pool = await self.fetch("Pool", pda.pool(pool_name))
        custodies = list(pool.custodies)
        decoded = await self.program.account["Custody"].fetch_multiple(
            custodies, commitment=Confirmed
        )
        if any(c is None for c in decoded):
            raise ValueError(f"pool {pool_name!r} lists a custody account that does not exist")
        oracles = [c.oracle.oracle_account for c in decoded if c is not None]
        return [AccountMeta(k, is_signer=False, is_writable=False) for k in [*custodies, *oracles]]

    # ---- admin ----------------------------------------------------------------------------

    def init_ix(
        self,
        admins: Sequence[Pubkey],
        min_signatures: int,
        oracle_authority: Pubkey,
        permissions: dict[str, bool] | None = None,
        *,
        upgrade_authority: Pubkey | None = None,
    ) -> Instruction:
        """``init``: creates the global config and the multisig (signers: ``admins``)."""
        params = {
            "min_signatures": min_signatures,
            "oracle_authority": oracle_authority,
            "permissions": permissions or all_permissions(True),
        }
        return self.ix(
            "init",
            params,
            accounts={
                "upgrade_authority": upgrade_authority or self.payer.pubkey(),
                "multisig": pda.multisig(),
                "transfer_authority": pda.transfer_authority(),
                "perpool": pda.perpool(),
                "perpool_program": PROGRAM_ID,
                "perpool_program_data": pda.program_data(),
                "system_program": SYSTEM_PROGRAM_ID,
            },
            remaining=[AccountMeta(a, is_signer=False, is_writable=False) for a in admins],
        )

    async def init(
        self,
        admins: Sequence[Pubkey],
        min_signatures: int,
        oracle_authority: Pubkey,
        permissions: dict[str, bool] | None = None,
    ) -> Signature:
        return await self.send(
            [self.init_ix(admins, min_signatures, oracle_authority, permissions)]
        )

    def approve_ix(self, admin: Pubkey, approved: bytes) -> Instruction:
        return self.ix(
            "approve_admin_instruction",
            list(approved),
            accounts={"admin": admin, "multisig": pda.multisig()},
        )

    async def approve(self, admin: Keypair, approved: bytes) -> Signature:
        return await self.send([self.approve_ix(admin.pubkey(), approved)], [admin])

    async def send_admin(
        self,
        name: str,
        ix: Instruction,
        hash_accounts: Sequence[Pubkey],
        admin: Keypair,
        approvers: Sequence[Keypair] = (),
    ) -> Signature:
        """Records ``approvers``' approvals of this exact instruction, then sends it as admin."""
        approved = instruction_hash(name, hash_accounts, bytes(ix.data[8:]))
        for approver in approvers:
            await self.approve(approver, approved)
        return await self.send([ix], [admin])

    def add_pool_ix(self, name: str, admin: Pubkey) -> Instruction:
        pool_key = pda.pool(name)
        return self.ix(
            "add_pool",
            name,
            accounts={
                "admin": admin,
                "multisig": pda.multisig(),
                "transfer_authority": pda.transfer_authority(),
                "perpool": pda.perpool(),
                "pool": pool_key,
                "lp_token_mint": pda.lp_token_mint(pool_key),
                "system_program": SYSTEM_PROGRAM_ID,
                "token_program": TOKEN_PROGRAM_ID,
                "rent": RENT,
            },
        )

    async def add_pool(
        self, name: str, admin: Keypair, approvers: Sequence[Keypair] = ()
    ) -> Signature:
        ix = self.add_pool_ix(name, admin.pubkey())
        return await self.send_admin("add_pool", ix, [pda.pool(name)], admin, approvers)

    def add_custody_ix(
        self, pool_name: str, mint: Pubkey, is_stable: bool, config: dict[str, Any], admin: Pubkey
    ) -> Instruction:
        keys = self.custody_keys(pool_name, mint)
        return self.ix(
            "add_custody",
            {"is_stable": is_stable, "config": config},
            accounts={
                "admin": admin,
                "multisig": pda.multisig(),
                "transfer_authority": pda.transfer_authority(),
                "perpool": pda.perpool(),
                "pool": keys.pool,
                "custody": keys.custody,
                "custody_token_account": keys.token_account,
                "custom_oracle": keys.oracle,
                "custody_token_mint": mint,
                "system_program": SYSTEM_PROGRAM_ID,
                "token_program": TOKEN_PROGRAM_ID,
                "rent": RENT,
            },
        )

    async def add_custody(
        self,
        pool_name: str,
        mint: Pubkey,
        is_stable: bool,
        config: dict[str, Any],
        admin: Keypair,
        approvers: Sequence[Keypair] = (),
    ) -> Signature:
        ix = self.add_custody_ix(pool_name, mint, is_stable, config, admin.pubkey())
        return await self.send_admin(
            "add_custody", ix, [pda.pool(pool_name), mint], admin, approvers
        )

    def set_permissions_ix(self, permissions: dict[str, bool], admin: Pubkey) -> Instruction:
        return self.ix(
            "set_permissions",
            permissions,
            accounts={"admin": admin, "multisig": pda.multisig(), "perpool": pda.perpool()},
        )

    async def set_permissions(
        self, permissions: dict[str, bool], admin: Keypair, approvers: Sequence[Keypair] = ()
    ) -> Signature:
        ix = self.set_permissions_ix(permissions, admin.pubkey())
        return await self.send_admin("set_permissions", ix, [pda.perpool()], admin, approvers)

    def set_custody_config_ix(
        self, pool_name: str, mint: Pubkey, config: dict[str, Any], admin: Pubkey
    ) -> Instruction:
        keys = self.custody_keys(pool_name, mint)
        return self.ix(
            "set_custody_config",
            config,
            accounts={
                "admin": admin,
                "multisig": pda.multisig(),
                "pool": keys.pool,
                "custody": keys.custody,
            },
        )

    async def set_custody_config(
        self,
        pool_name: str,
        mint: Pubkey,
        config: dict[str, Any],
        admin: Keypair,
        approvers: Sequence[Keypair] = (),
    ) -> Signature:
        ix = self.set_custody_config_ix(pool_name, mint, config, admin.pubkey())
        custody = self.custody_keys(pool_name, mint).custody
        return await self.send_admin("set_custody_config", ix, [custody], admin, approvers)

    def set_oracle_authority_ix(self, oracle_authority: Pubkey, admin: Pubkey) -> Instruction:
        return self.ix(
            "set_oracle_authority",
            oracle_authority,
            accounts={"admin": admin, "multisig": pda.multisig(), "perpool": pda.perpool()},
        )

    async def set_oracle_authority(
        self, oracle_authority: Pubkey, admin: Keypair, approvers: Sequence[Keypair] = ()
    ) -> Signature:
        ix = self.set_oracle_authority_ix(oracle_authority, admin.pubkey())
        return await self.send_admin("set_oracle_authority", ix, [pda.perpool()], admin, approvers)

    def withdraw_protocol_fees_ix(
        self, pool_name: str, mint: Pubkey, amount: int, receiving_account: Pubkey, admin: Pubkey
    ) -> Instruction:
        keys = self.custody_keys(pool_name, mint)
        return self.ix(
            "withdraw_protocol_fees",
            amount,
            accounts={
                "admin": admin,
                "multisig": pda.multisig(),
                "transfer_authority": pda.transfer_authority(),
                "perpool": pda.perpool(),
                "pool": keys.pool,
                "custody": keys.custody,
                "custody_token_account": keys.token_account,
                "receiving_account": receiving_account,
                "token_program": TOKEN_PROGRAM_ID,
            },
        )

    async def withdraw_protocol_fees(
        self,
        pool_name: str,
        mint: Pubkey,
        amount: int,
        receiving_account: Pubkey,
        admin: Keypair,
        approvers: Sequence[Keypair] = (),
    ) -> Signature:
        ix = self.withdraw_protocol_fees_ix(
            pool_name, mint, amount, receiving_account, admin.pubkey()
        )
        custody = self.custody_keys(pool_name, mint).custody
        return await self.send_admin(
            "withdraw_protocol_fees", ix, [custody, receiving_account], admin, approvers
        )

    def remove_custody_ix(
        self, pool_name: str, mint: Pubkey, receiving_account: Pubkey, admin: Pubkey
    ) -> Instruction:
        keys = self.custody_keys(pool_name, mint)
        return self.ix(
            "remove_custody",
            accounts={
                "admin": admin,
                "multisig": pda.multisig(),
                "transfer_authority": pda.transfer_authority(),
                "perpool": pda.perpool(),
                "pool": keys.pool,
                "custody": keys.custody,
                "custody_token_account": keys.token_account,
                "custom_oracle": keys.oracle,
                "receiving_account": receiving_account,
                "token_program": TOKEN_PROGRAM_ID,
            },
        )

    async def remove_custody(
        self,
        pool_name: str,
        mint: Pubkey,
        receiving_account: Pubkey,
        admin: Keypair,
        approvers: Sequence[Keypair] = (),
    ) -> Signature:
        """Removes an empty custody; stray vault tokens go to ``receiving_account``."""
        ix = self.remove_custody_ix(pool_name, mint, receiving_account, admin.pubkey())
        custody = self.custody_keys(pool_name, mint).custody
        return await self.send_admin(
            "remove_custody", ix, [custody, receiving_account], admin, approvers
        )

    def remove_pool_ix(self, pool_name: str, admin: Pubkey) -> Instruction:
        pool_key = pda.pool(pool_name)
        return self.ix(
            "remove_pool",
            accounts={
                "admin": admin,
                "multisig": pda.multisig(),
                "perpool": pda.perpool(),
                "pool": pool_key,
                "lp_token_mint": pda.lp_token_mint(pool_key),
            },
        )

    async def remove_pool(
        self, pool_name: str, admin: Keypair, approvers: Sequence[Keypair] = ()
    ) -> Signature:
        ix = self.remove_pool_ix(pool_name, admin.pubkey())
        return await self.send_admin("remove_pool", ix, [pda.pool(pool_name)], admin, approvers)

    # ---- oracle ---------------------------------------------------------------------------

    def set_price_ix(
        self,
        pool_name: str,
        mint: Pubkey,
        authority: Pubkey,
        *,
        price: int,
        expo: int,
        conf: int,
        ema: int,
        publish_time: int,
    ) -> Instruction:
        keys = self.custody_keys(pool_name, mint)
        return self.ix(
            "set_custom_oracle_price",
            {"price": price, "expo": expo, "conf": conf, "ema": ema, "publish_time": publish_time},
            accounts={
                "oracle_authority": authority,
                "perpool": pda.perpool(),
                "pool": keys.pool,
                "custody": keys.custody,
                "oracle": keys.oracle,
            },
        )

    async def set_price(
        self, pool_name: str, mint: Pubkey, authority: Keypair, **price: int
    ) -> Signature:
        return await self.send(
            [self.set_price_ix(pool_name, mint, authority.pubkey(), **price)], [authority]
        )


def all_permissions(allowed: bool) -> dict[str, bool]:
    names = (
        "allow_add_liquidity",
        "allow_remove_liquidity",
        "allow_open_position",
        "allow_close_position",
        "allow_collateral_change",
        "allow_swap",
        "allow_liquidation",
    )
    return dict.fromkeys(names, allowed)


def _snake(name: str) -> str:
    out = []
    for ch in name:
        if ch.isupper():
            out.append("_" + ch.lower())
        else:
            out.append(ch)
    return "".join(out)
