"""``perpool setup``: bring a cluster to what a pool spec describes, idempotently.

Each step checks the chain first and reports ``exists`` (with ``differs`` when a custody's
config on chain is not the spec's; ``update_config`` applies it), ``created``, or with
``simulate`` the outcome of simulating the first missing step and ``pending`` for the rest
(they depend on it). Admin instructions are approved by ``approvers`` first when the
multisig needs more than one signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from solana.rpc.commitment import Confirmed
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import InitializeMintParams, initialize_mint

from perpool import pda
from perpool.amounts import oracle_price
from perpool.client import PerpoolClient, instruction_hash
from perpool.custody_config import custody_config
from perpool.errors import PerpoolError
from perpool.exchange import fetch_decoded
from perpool.localnet import CLOCK_SYSVAR, ClockSysvar, airdrop
from perpool.spec import CustodySpec, PoolSpec, localnet_mint_authority, localnet_mint_keypair
from perpool.txn import Status, TxOutcome, jsonable, run

MINT_SIZE = 82
LAMPORTS_PER_SOL = 1_000_000_000
ADMIN_MIN_LAMPORTS = 2 * LAMPORTS_PER_SOL
ADMIN_AIRDROP_LAMPORTS = 100 * LAMPORTS_PER_SOL


@dataclass
class Step:
    step: str
    status: str
    address: str | None = None
    detail: str | None = None
    signature: str | None = None
    logs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "step": self.step,
            "status": self.status,
            "address": self.address,
            "detail": self.detail,
            "signature": self.signature,
        }
        if self.logs:
            out["logs"] = self.logs
        return out


class _Runner:
    """Sends (or simulates) each missing step; once one is simulated, later ones are pending."""

    def __init__(
        self,
        client: PerpoolClient,
        admin: Keypair,
        approvers: Sequence[Keypair],
        simulate: bool,
        status: Status | None,
    ) -> None:
        self.client = client
        self.admin = admin
        self.approvers = list(approvers)
        self.simulate = simulate
        self.status = status
        self.blocked = False
        self.steps: list[Step] = []

    def exists(self, step: str, address: Pubkey | None, detail: str | None = None) -> None:
        self.steps.append(Step(step, "exists", str(address) if address else None, detail))

    async def create(
        self,
        step: str,
        address: Pubkey | None,
        ixs: Sequence[Instruction],
        signers: Sequence[Keypair] = (),
        *,
        detail: str | None = None,
        admin_hash: tuple[str, Sequence[Pubkey]] | None = None,
        status: str = "created",
    ) -> None:
        where = str(address) if address else None
        if self.blocked:
            self.steps.append(Step(step, "pending", where, detail))
            return
        if self.status:
            self.status(f"{step}: sending")
        if admin_hash is not None and self.approvers and not self.simulate:
            name, keys = admin_hash
            approved = instruction_hash(name, keys, bytes(ixs[-1].data[8:]))
            for approver in self.approvers:
                await run(
                    self.client, [self.client.approve_ix(approver.pubkey(), approved)], [approver]
                )
        outcome: TxOutcome = await run(
            self.client, ixs, signers, simulate=self.simulate, status=self.status
        )
        if self.simulate:
            self.blocked = True
            self.steps.append(Step(step, "simulated", where, detail, logs=outcome.logs))
        else:
            self.steps.append(Step(step, status, where, detail, outcome.signature))


async def chain_now(client: PerpoolClient) -> int:
    info = (await client.connection.get_account_info(CLOCK_SYSVAR, Confirmed)).value
    if info is None:
        raise PerpoolError("the cluster has no Clock sysvar account")
    return ClockSysvar.decode(bytes(info.data)).unix_timestamp


async def setup_pool(
    client: PerpoolClient,
    spec: PoolSpec,
    *,
    localnet: bool,
    approvers: Sequence[Keypair] = (),
    update_config: bool = False,
    simulate: bool = False,
    status: Status | None = None,
) -> list[Step]:
    admin = client.payer
    runner = _Runner(client, admin, approvers, simulate, status)
    conn = client.connection
    if localnet and not simulate:
        lamports = (await conn.get_balance(admin.pubkey(), Confirmed)).value
        if lamports < ADMIN_MIN_LAMPORTS:
            await airdrop(conn, admin.pubkey(), ADMIN_AIRDROP_LAMPORTS)
            runner.steps.append(
                Step("airdrop", "created", str(admin.pubkey()), "100 SOL for the admin's fees")
            )

    # Program config and admin multisig.
    perpool_key = pda.perpool()
    if await fetch_decoded(client, "Perpool", perpool_key) is not None:
        runner.exists("init", perpool_key)
    else:
        admins = list(spec.admins) or [admin.pubkey()]
        oracle_authority = spec.oracle_authority or admin.pubkey()
        ix = client.init_ix(admins, spec.min_signatures, oracle_authority)
        await runner.create(
            "init", perpool_key, [ix], detail=f"{spec.min_signatures}-of-{len(admins)} admin"
        )

    pool_key = pda.pool(spec.pool_name)
    if await fetch_decoded(client, "Pool", pool_key) is not None:
        runner.exists("pool", pool_key, spec.pool_name)
    else:
        ix = client.add_pool_ix(spec.pool_name, admin.pubkey())
        await runner.create(
            "pool", pool_key, [ix], detail=spec.pool_name, admin_hash=("add_pool", [pool_key])
        )

    for custody in spec.custodies:
        await _setup_mint(runner, client, spec.pool_name, custody, localnet)
        await _setup_custody(runner, client, spec, custody, update_config)
        await _setup_price(runner, client, spec, custody)
    return runner.steps


async def _setup_mint(
    runner: _Runner, client: PerpoolClient, pool_name: str, custody: CustodySpec, localnet: bool
) -> None:
    step = f"mint {custody.symbol}"
    info = (await client.connection.get_account_info(custody.mint, Confirmed)).value
    if info is not None:
        if info.owner != TOKEN_PROGRAM_ID or len(info.data) < MINT_SIZE:
            raise PerpoolError(f"{custody.symbol}: {custody.mint} is not an SPL token mint")
        decimals = bytes(info.data)[44]
        if decimals != custody.decimals:
            raise PerpoolError(
                f"{custody.symbol}: mint {custody.mint} has {decimals} decimals, "
                f"the spec says {custody.decimals}"
            )
        runner.exists(step, custody.mint, f"{decimals} decimals")
        return
    if not custody.test_mint:
        raise PerpoolError(f"{custody.symbol}: mint {custody.mint} does not exist")
    if not localnet:
        raise PerpoolError(
            f"{custody.symbol}: test mints are created on a localnet only; "
            'give the custody a `mint = "<address>"` in the spec'
        )
    mint = localnet_mint_keypair(pool_name, custody.symbol)
    assert mint.pubkey() == custody.mint
    rent = (
        await client.connection.get_minimum_balance_for_rent_exemption(MINT_SIZE, Confirmed)
    ).value
    ixs = [
        create_account(
            CreateAccountParams(
                from_pubkey=client.payer.pubkey(),
                to_pubkey=mint.pubkey(),
                lamports=rent,
                space=MINT_SIZE,
                owner=TOKEN_PROGRAM_ID,
            )
        ),
        initialize_mint(
            InitializeMintParams(
                decimals=custody.decimals,
                program_id=TOKEN_PROGRAM_ID,
                mint=mint.pubkey(),
                mint_authority=localnet_mint_authority().pubkey(),
            )
        ),
    ]
    await runner.create(
        step, mint.pubkey(), ixs, [mint], detail=f"test mint, {custody.decimals} decimals"
    )


def _snake(name: str) -> str:
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in name)


def config_from_custody(client: PerpoolClient, custody: Any) -> dict[str, Any]:
    """The ``CustodyConfig`` a custody account currently holds (its fields, by the IDL)."""
    idl_type = next(t for t in client.program.idl.types if t.name == "CustodyConfig")
    return {
        _snake(f.name): getattr(custody, _snake(f.name))
        for f in idl_type.ty.fields  # type: ignore[union-attr]
    }


def spec_config(client: PerpoolClient, spec: PoolSpec, custody: CustodySpec) -> dict[str, Any]:
    keys = client.custody_keys(spec.pool_name, custody.mint)
    try:
        return custody_config(
            custody.oracle_account or keys.oracle,
            client_types=client.program.type,
            **custody.config,
        )
    except (TypeError, ValueError) as exc:
        raise PerpoolError(f"{custody.symbol}: invalid custody config: {exc}") from exc


async def _setup_custody(
    runner: _Runner,
    client: PerpoolClient,
    spec: PoolSpec,
    custody: CustodySpec,
    update_config: bool,
) -> None:
    step = f"custody {custody.symbol}"
    keys = client.custody_keys(spec.pool_name, custody.mint)
    wanted = spec_config(client, spec, custody)
    existing = await fetch_decoded(client, "Custody", keys.custody)
    if existing is None:
        ix = client.add_custody_ix(
            spec.pool_name, custody.mint, custody.stable, wanted, runner.admin.pubkey()
        )
        await runner.create(
            step,
            keys.custody,
            [ix],
            detail="stable" if custody.stable else None,
            admin_hash=("add_custody", [keys.pool, custody.mint]),
        )
        return
    # Compare as the program would store it: the spec's config round-tripped through Borsh.
    types = client.program.coder.types
    stored = types.decode("CustodyConfig", types.encode("CustodyConfig", wanted))
    same = jsonable(stored) == jsonable(config_from_custody(client, existing))
    if same:
        runner.exists(step, keys.custody)
    elif update_config:
        ix = client.set_custody_config_ix(
            spec.pool_name, custody.mint, wanted, runner.admin.pubkey()
        )
        await runner.create(
            step,
            keys.custody,
            [ix],
            detail="config updated",
            admin_hash=("set_custody_config", [keys.custody]),
            status="updated",
        )
    else:
        runner.steps.append(
            Step(
                step,
                "differs",
                str(keys.custody),
                "config on chain differs from the spec; --update-config applies the spec",
            )
        )


async def _setup_price(
    runner: _Runner, client: PerpoolClient, spec: PoolSpec, custody: CustodySpec
) -> None:
    if custody.price is None or custody.oracle_account is not None:
        return
    step = f"price {custody.symbol}"
    keys = client.custody_keys(spec.pool_name, custody.mint)
    oracle = await fetch_decoded(client, "CustomOracle", keys.oracle)
    if oracle is not None and oracle.publish_time > 0:
        runner.exists(step, keys.oracle, oracle_price(oracle.price, oracle.expo))
        return
    mantissa, expo = custody.price
    ix = client.set_price_ix(
        spec.pool_name,
        custody.mint,
        runner.admin.pubkey(),
        price=mantissa,
        expo=expo,
        conf=custody.conf,
        ema=custody.ema if custody.ema is not None else mantissa,
        publish_time=await chain_now(client),
    )
    await runner.create(step, keys.oracle, [ix], detail=oracle_price(mantissa, expo))
