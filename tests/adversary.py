"""The adversarial suite's world and recorder (``tests/adversarial``).

A *world* is one pool of honest users (an LP, a victim with open positions) plus an attacker
holding every pool token, its own position and LP tokens, and a second pool whose accounts serve
as look-alikes. Every hostile attempt goes through :class:`Attack`, which checks SECURITY.md's
"rejected" (the expected named error, and a digest of every program-owned account, vault, LP
mint and user token account identical before and after) and counts the outcome under the test's
attack class (``@pytest.mark.attack_class(N)``). The counts become the table in
SECURITY_REPORT.md.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pool_env import PoolEnv, TokenSpec, build_pool_env
from rejections import chain_state, changed_accounts, send_failing
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from trade_support import (
    ANCHOR_USER_ERRORS,
    BPS,
    SOL,
    USD,
    USDC,
    Trader,
    add_pool,
    long_market,
    new_trader,
    open_position,
    provide_liquidity,
    short_market,
    without_signer,
)

from perpool import lp, pda, trade
from perpool.program import error_names
from perpool.trade import LONG, SHORT, Market

RATE_ONE = 1_000_000_000
E8 = 10**8
ETH = E8
"""One ETH (or ETH² unit) in base units (8 decimals)."""
USDT = 1_000_000

ATTACK_CLASSES: dict[int, str] = {
    1: "Missing signer",
    2: "Ownership",
    3: "Account substitution",
    4: "Type cosplay",
    5: "PDA seeds",
    6: "Duplicate mutable accounts",
    7: "Arbitrary CPI",
    8: "Instruction introspection",
    9: "Oracle stale",
    10: "Oracle future-dated",
    11: "Oracle confidence",
    12: "Oracle feed / exponent",
    13: "Oracle manipulation",
    14: "Rounding",
    15: "Overflow",
    16: "First depositor / donation",
    17: "Fee bypass",
    18: "Self-liquidation",
    19: "Liquidation griefing",
    20: "Zero / negative equity",
    21: "Reinitialization",
    22: "Closed-account revival",
    23: "remaining_accounts",
    24: "Utilization",
    25: "Leverage bounds",
    26: "Borrow accrual",
    27: "Admin M-of-N",
    28: "Pause flags",
    29: "Test-only instructions",
    30: "Size limits",
}

# ------------------------------------------------------------------------------------------
# Outcomes
# ------------------------------------------------------------------------------------------

REJECTED = "rejected"
"""The program refused with the expected named error; nothing changed."""
FAILED = "failed"
"""The runtime or another program refused (no Anchor error to name); nothing changed."""
HELD = "held"
"""The action is allowed by design and the invariant it threatens held (no gain, caps bind)."""
ACCEPTED = "accepted"
"""A hostile transaction went through, or a threatened invariant broke: a finding."""
OUTCOMES = (REJECTED, FAILED, HELD, ACCEPTED)


@dataclass
class CaseRecord:
    attack_class: int
    test: str
    case: str
    outcome: str
    detail: str = ""


@dataclass
class Ledger:
    """Every attempt of the run, in order."""

    cases: list[CaseRecord] = field(default_factory=list)

    def add(self, record: CaseRecord) -> None:
        self.cases.append(record)

    def by_class(self) -> dict[int, Counter[str]]:
        table: dict[int, Counter[str]] = {}
        for case in self.cases:
            table.setdefault(case.attack_class, Counter())[case.outcome] += 1
        return dict(sorted(table.items()))

    def markdown(self) -> str:
        lines = [
            "| # | Attack class | Tried | Rejected | Failed (runtime) | Allowed, held | Accepted |",
            "|---:|---|---:|---:|---:|---:|---:|",
        ]
        totals: Counter[str] = Counter()
        for number, counts in self.by_class().items():
            totals.update(counts)
            lines.append(
                f"| {number} | {ATTACK_CLASSES.get(number, '?')} | {sum(counts.values())} | "
                + " | ".join(str(counts[o]) for o in OUTCOMES)
                + " |"
            )
        lines.append(
            f"| | **Total** | **{sum(totals.values())}** | "
            + " | ".join(f"**{totals[o]}**" for o in OUTCOMES)
            + " |"
        )
        return "\n".join(lines)

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "classes": {
                str(n): {"name": ATTACK_CLASSES.get(n, "?"), **dict(c)}
                for n, c in self.by_class().items()
            },
            "markdown": self.markdown(),
            "cases": [dataclasses.asdict(c) for c in self.cases],
        }
        path.write_text(json.dumps(payload, indent=1) + "\n")


LEDGER = Ledger()


class Finding(AssertionError):
    """A hostile transaction was accepted or an invariant broke."""


# ------------------------------------------------------------------------------------------
# The world
# ------------------------------------------------------------------------------------------

TOKENS = (
    TokenSpec("SOL", 9, False, 100_00, -2),
    TokenSpec("ETH", 8, False, 3_000 * E8, -8),
    TokenSpec("USDC", 6, True, 1_000_000, -6),
    TokenSpec("USDT", 6, True, 1_000_000, -6),
    # ETH² payoff market: k = 0.001, so $1000 per unit at ETH $1000.
    TokenSpec("ETHSQ", 8, False, 1_000 * E8, -8),
)
OTHER_TOKENS = TOKENS[:4]

FEES: dict[str, Any] = {
    "open_position_bps": 10,
    "close_position_bps": 10,
    "swap_bps": 20,
    "min_fee_usd": USD // 10,
    "liquidity_min_fee_bps": 5,
    "liquidity_max_fee_bps": 50,
    "liquidity_fee_k_bps": 5_000,
    "liquidation_reward_bps": 50,
    "protocol_share_bps": 2_000,
    "hourly_rate": RATE_ONE // 10_000,
    # Prices stay valid for an hour, so slow modules never trip over staleness by accident;
    # the oracle classes set their own ages.
    "max_price_age_sec": 3_600,
    "max_initial_leverage": 50 * BPS,
    "max_leverage": 100 * BPS,
    "liquidation_steps": ((BPS, 5_000), (5_000, BPS)),
    "insurance_fund_fraction_bps": 2_000,
    "insurance_fund_cap_usd": 1_000 * USD,
    "funding_c": 100,
    "max_funding_rate": RATE_ONE // 100,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "SOL": FEES,
    "ETH": FEES,
    "USDC": FEES,
    "USDT": FEES,
    "ETHSQ": FEES | {"payoff": "square", "payoff_scale": RATE_ONE // 1_000, "max_profit_bps": BPS},
}


@dataclass
class World:
    env: PoolEnv
    """Pool ``main``: SOL, ETH, USDC, USDT and the ETH² payoff market ETHSQ."""
    other: PoolEnv
    """Pool ``other`` on the same chain with its own SOL/ETH/USDC/USDT mints (look-alikes)."""
    lp: Trader
    victim: Trader
    """Holds the positions in ``markets`` and LP tokens."""
    attacker: Trader
    """Funded in every token, with its own long SOL position and LP tokens."""
    markets: dict[str, Market]
    """``long_sol``, ``short_sol`` (USDC), ``long_eth``, ``short_eth`` (USDT), ``long_ethsq``
    (USDC): the victim holds all of them; the attacker holds ``long_sol``."""
    lp_accounts: dict[str, Pubkey]
    """LP token account per role: ``lp``, ``victim``, ``attacker``."""
    relayer: Keypair
    """Pays the fees of hostile transactions, so that no authority (the admin pays for the
    client's own transactions) signs one merely as the fee payer."""

    @property
    def client(self) -> Any:
        return self.env.client

    def watch(self) -> list[Pubkey]:
        """Every user account whose change a hostile transaction could cause."""
        keys: list[Pubkey] = []
        for trader in (self.lp, self.victim, self.attacker):
            keys.append(trader.key)
            keys.extend(trader.accounts.values())
        keys.extend(self.lp_accounts.values())
        return keys


async def build_world(
    url: str, faucet: Keypair, *, signers: int = 1, min_signatures: int = 1
) -> World:
    """The world; the admin multisig is ``min_signatures``-of-``signers`` (1-of-1 unless a
    module needs approvals to attack)."""
    env = await build_pool_env(
        url, faucet, TOKENS, CONFIGS, signers=signers, min_signatures=min_signatures
    )
    other = await add_pool(env, "other", OTHER_TOKENS)
    provider = await new_trader(
        env, SOL=1_000 * SOL, ETH=100 * ETH, USDC=1_000_000 * USDC, USDT=1_000_000 * USDT
    )
    lp_accounts = {"lp": await env.lp_account(provider.key)}
    for symbol, amount in (
        ("SOL", 1_000 * SOL),
        ("ETH", 100 * ETH),
        ("USDC", 1_000_000 * USDC),
        ("USDT", 1_000_000 * USDT),
    ):
        await lp.add_liquidity(
            env.client,
            provider.wallet,
            env.pool,
            env.mint(symbol),
            amount,
            funding_account=provider.accounts[symbol],
            lp_token_account=lp_accounts["lp"],
        )
    # Liquidity in the look-alike pool too, so its accounts are live and valuable.
    for symbol, amount in (("SOL", 100 * SOL), ("USDC", 100_000 * USDC)):
        await provide_liquidity(other, symbol, amount)

    markets = {
        "long_sol": long_market(env, "SOL"),
        "short_sol": short_market(env, "SOL", "USDC"),
        "long_eth": long_market(env, "ETH"),
        "short_eth": short_market(env, "ETH", "USDT"),
        "long_ethsq": Market.payoff(env.pool, env.mint("ETHSQ"), env.mint("USDC"), LONG),
    }
    victim = await new_trader(
        env, SOL=100 * SOL, ETH=10 * ETH, USDC=100_000 * USDC, USDT=100_000 * USDT
    )
    attacker = await new_trader(
        env, SOL=100 * SOL, ETH=10 * ETH, USDC=100_000 * USDC, USDT=100_000 * USDT
    )
    await open_position(env, victim, markets["long_sol"], collateral=10 * SOL, size_usd=5_000 * USD)
    await open_position(
        env, victim, markets["short_sol"], collateral=1_000 * USDC, size_usd=5_000 * USD
    )
    await open_position(env, victim, markets["long_eth"], collateral=ETH, size_usd=9_000 * USD)
    await open_position(
        env, victim, markets["short_eth"], collateral=1_000 * USDT, size_usd=5_000 * USD
    )
    await open_position(
        env, victim, markets["long_ethsq"], collateral=500 * USDC, size_usd=2_000 * USD
    )
    await open_position(
        env, attacker, markets["long_sol"], collateral=5 * SOL, size_usd=2_000 * USD
    )
    for role, trader, symbol, amount in (
        ("victim", victim, "USDC", 10_000 * USDC),
        ("attacker", attacker, "USDC", 10_000 * USDC),
    ):
        lp_accounts[role] = await env.lp_account(trader.key)
        await lp.add_liquidity(
            env.client,
            trader.wallet,
            env.pool,
            env.mint(symbol),
            amount,
            funding_account=trader.accounts[symbol],
            lp_token_account=lp_accounts[role],
        )
    relayer = await env.new_wallet(100)
    return World(env, other, provider, victim, attacker, markets, lp_accounts, relayer)


# ------------------------------------------------------------------------------------------
# Attempts
# ------------------------------------------------------------------------------------------


class Attack:
    """Sends hostile transactions for one test and records each attempt under its class."""

    def __init__(self, world: World, attack_class: int, test: str) -> None:
        self.world = world
        self.attack_class = attack_class
        self.test = test

    def _record(self, case: str, outcome: str, detail: str = "") -> None:
        LEDGER.add(CaseRecord(self.attack_class, self.test, case, outcome, detail))

    async def rejected(
        self,
        case: str,
        ixs: Sequence[Instruction],
        signers: Sequence[Keypair] = (),
        *,
        error: str | Iterable[str],
        watch: Iterable[Pubkey] = (),
        env: PoolEnv | None = None,
    ) -> str:
        """The transaction fails with (one of) the named error(s), in preflight and landed,
        and changes nothing. Returns the error name."""
        expected = {error} if isinstance(error, str) else set(error)
        env = env or self.world.env
        watched = [*self.world.watch(), *watch]
        before = await chain_state(env.client, watched)
        try:
            failure = await send_failing(env.client, ixs, signers, payer=self.world.relayer)
        except AssertionError as exc:
            self._record(case, ACCEPTED, str(exc).splitlines()[0])
            raise Finding(f"{case}: hostile transaction accepted: {exc}") from None
        after = await chain_state(env.client, watched)
        changed = changed_accounts(before, after)
        if changed:
            self._record(case, ACCEPTED, f"failed but changed {changed}")
            raise Finding(f"{case}: failed transaction changed {changed}")
        if failure.name not in expected:
            self._record(case, "wrong-error", f"{failure.name} ({failure.error})")
            raise AssertionError(
                f"{case}: expected {sorted(expected)}, got {failure.name} ({failure.error}):\n"
                + "\n".join(failure.logs)
            )
        assert failure.name is not None
        if failure.code is not None and failure.code >= ANCHOR_USER_ERRORS:
            assert error_names(env.client.program.idl)[failure.code] == failure.name
        self._record(case, REJECTED, failure.name)
        return failure.name

    async def failed(
        self,
        case: str,
        ixs: Sequence[Instruction],
        signers: Sequence[Keypair] = (),
        *,
        contains: str = "",
        watch: Iterable[Pubkey] = (),
        env: PoolEnv | None = None,
    ) -> str:
        """For refusals that are not Anchor errors (runtime, token program): the transaction
        fails, its error or logs contain ``contains``, and nothing changes."""
        env = env or self.world.env
        watched = [*self.world.watch(), *watch]
        before = await chain_state(env.client, watched)
        try:
            failure = await send_failing(env.client, ixs, signers, payer=self.world.relayer)
        except AssertionError as exc:
            self._record(case, ACCEPTED, str(exc).splitlines()[0])
            raise Finding(f"{case}: hostile transaction accepted: {exc}") from None
        changed = changed_accounts(before, await chain_state(env.client, watched))
        if changed:
            self._record(case, ACCEPTED, f"failed but changed {changed}")
            raise Finding(f"{case}: failed transaction changed {changed}")
        text = f"{failure.error}\n" + "\n".join(failure.logs)
        if contains not in text:
            self._record(case, "wrong-error", str(failure.error))
            raise AssertionError(f"{case}: expected {contains!r} in:\n{text}")
        self._record(case, FAILED, failure.name or str(failure.error))
        return failure.name or str(failure.error)

    @asynccontextmanager
    async def holds(self, case: str) -> AsyncIterator[None]:
        """An action allowed by design: the block performs it and asserts the threatened
        invariant; a failing assertion is recorded as a finding."""
        try:
            yield
        except AssertionError as exc:
            self._record(case, ACCEPTED, str(exc).splitlines()[0] if str(exc) else "")
            raise
        self._record(case, HELD)

    def static(self, case: str, ok: bool, detail: str = "") -> None:
        """A property checked without a transaction (source, IDL, layout)."""
        self._record(case, HELD if ok else ACCEPTED, detail)
        if not ok:
            raise Finding(f"{case}: {detail}")


# ------------------------------------------------------------------------------------------
# Honest instructions to corrupt
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Honest:
    """A valid instruction (its simulation succeeds) that a hostile case corrupts."""

    name: str
    """The program instruction (IDL name)."""
    label: str
    ix: Instruction
    signers: tuple[Keypair, ...]
    authority: Pubkey | None
    """The account whose signature authorizes it (``None`` for permissionless cranks)."""


def snake(name: str) -> str:
    """``openPosition`` -> ``open_position`` (the IDL is camelCase, the program snake_case)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def instruction_names(client: Any) -> set[str]:
    return {snake(i.name) for i in client.program.idl.instructions}


def account_names(client: Any, ix_name: str) -> list[str]:
    """The instruction's fixed accounts in order, snake_case (remaining accounts follow)."""
    (idl_ix,) = [i for i in client.program.idl.instructions if snake(i.name) == ix_name]
    return [snake(a.name) for a in idl_ix.accounts]


def with_account(
    client: Any,
    honest: Honest,
    account: str,
    key: Pubkey,
    *,
    writable: bool | None = None,
) -> Instruction:
    """``honest.ix`` with the named account replaced by ``key`` (signer flag kept)."""
    index = account_names(client, honest.name).index(account)
    metas = list(honest.ix.accounts)
    old = metas[index]
    metas[index] = AccountMeta(
        key, old.is_signer, old.is_writable if writable is None else writable
    )
    return Instruction(honest.ix.program_id, honest.ix.data, metas)


def with_remaining(honest: Honest, client: Any, remaining: Sequence[AccountMeta]) -> Instruction:
    """``honest.ix`` with its remaining accounts replaced."""
    fixed = len(account_names(client, honest.name))
    return Instruction(
        honest.ix.program_id, honest.ix.data, [*honest.ix.accounts[:fixed], *remaining]
    )


def without_signature(honest: Honest) -> Instruction:
    """``honest.ix`` with its authority marked as not signing."""
    assert honest.authority is not None
    return without_signer(honest.ix, honest.authority)


async def honest_instructions(world: World) -> list[Honest]:
    """One valid instruction per program instruction (several markets/tokens where they differ),
    all by the attacker on its own accounts or by the admin; each simulates successfully."""
    env, client, me = world.env, world.client, world.attacker
    admin = env.admin.pubkey()
    out: list[Honest] = []

    def add(name: str, label: str, ix: Instruction, *signers: Keypair) -> None:
        authority = signers[0].pubkey() if signers else None
        out.append(Honest(name, label, ix, tuple(signers), authority))

    for symbol, amount in (
        ("SOL", SOL),
        ("ETH", ETH // 10),
        ("USDC", 100 * USDC),
        ("USDT", 100 * USDT),
    ):
        add(
            "add_liquidity",
            f"add_liquidity {symbol}",
            await lp.add_liquidity_ix(
                client,
                me.key,
                env.pool,
                env.mint(symbol),
                amount,
                funding_account=me.accounts[symbol],
                lp_token_account=world.lp_accounts["attacker"],
            ),
            me.wallet,
        )
        add(
            "remove_liquidity",
            f"remove_liquidity {symbol}",
            await lp.remove_liquidity_ix(
                client,
                me.key,
                env.pool,
                env.mint(symbol),
                10 * USD,
                receiving_account=me.accounts[symbol],
                lp_token_account=world.lp_accounts["attacker"],
            ),
            me.wallet,
        )
    collateral = {"short_sol": 100 * USDC, "long_eth": ETH // 10, "short_eth": 100 * USDT}
    collateral["long_ethsq"] = 100 * USDC
    for key, amount in collateral.items():
        market = world.markets[key]
        add(
            "open_position",
            f"open_position {key}",
            trade.open_position_ix(
                client,
                me.key,
                market,
                collateral_amount=amount,
                size_usd=1_000 * USD,
                funding_account=me.accounts[symbol_of(env, market.collateral_mint)],
            ),
            me.wallet,
        )
    mine = world.markets["long_sol"]
    add(
        "close_position",
        "close_position long_sol half",
        trade.close_position_ix(
            client, me.key, mine, receiving_account=me.accounts["SOL"], close_bps=5_000
        ),
        me.wallet,
    )
    add(
        "add_collateral",
        "add_collateral long_sol",
        trade.add_collateral_ix(
            client, me.key, mine, SOL // 10, funding_account=me.accounts["SOL"]
        ),
        me.wallet,
    )
    add(
        "remove_collateral",
        "remove_collateral long_sol",
        trade.remove_collateral_ix(
            client, me.key, mine, 10 * USD, receiving_account=me.accounts["SOL"]
        ),
        me.wallet,
    )
    for src, dst, amount in (
        ("USDC", "USDT", 100 * USDC),
        ("SOL", "USDC", SOL),
        ("ETH", "SOL", ETH // 10),
    ):
        add(
            "swap",
            f"swap {src}->{dst}",
            trade.swap_ix(
                client,
                me.key,
                env.pool,
                env.mint(src),
                env.mint(dst),
                amount,
                funding_account=me.accounts[src],
                receiving_account=me.accounts[dst],
            ),
            me.wallet,
        )
    for symbol in ("SOL", "ETH"):
        keys = client.custody_keys(env.pool, env.mint(symbol))
        add(
            "accrue_borrow",
            f"accrue_borrow {symbol}",
            client.ix("accrue_borrow", accounts={"pool": keys.pool, "custody": keys.custody}),
        )
        add(
            "update_funding",
            f"update_funding {symbol}",
            trade.update_funding_ix(client, env.pool, env.mint(symbol)),
        )
    add(
        "update_pool_aum",
        "update_pool_aum",
        client.ix(
            "update_pool_aum",
            accounts={"pool": pda.pool(env.pool)},
            remaining=await client.pool_remaining_accounts(env.pool),
        ),
    )
    now = await env.now()
    for symbol in ("SOL", "ETH", "USDC"):
        spec = env.specs[symbol]
        last = env.last_publish.get(symbol, 0)
        add(
            "set_custom_oracle_price",
            f"set_custom_oracle_price {symbol}",
            client.set_price_ix(
                env.pool,
                env.mint(symbol),
                admin,
                price=spec.price,
                expo=spec.expo,
                conf=0,
                ema=spec.price,
                publish_time=max(now, last + 1),
            ),
            env.admin,
        )
    return out


def symbol_of(env: PoolEnv, mint: Pubkey) -> str:
    return next(s for s in env.specs if env.mint(s) == mint)


__all__ = [
    "ACCEPTED",
    "ATTACK_CLASSES",
    "BPS",
    "ETH",
    "FAILED",
    "HELD",
    "LEDGER",
    "LONG",
    "REJECTED",
    "SHORT",
    "SOL",
    "USD",
    "USDC",
    "USDT",
    "Attack",
    "Honest",
    "World",
    "account_names",
    "build_world",
    "honest_instructions",
    "instruction_names",
    "snake",
    "symbol_of",
    "with_account",
    "with_remaining",
    "without_signature",
]
