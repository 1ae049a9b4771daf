"""Classes 5 and 7: accounts at the wrong address.

Class 5, PDA seeds: positions derived for another owner, side, custody or pool or with a
non-canonical bump; the transfer authority, multisig, perpool, pool, LP mint, vault and oracle
at addresses from other seeds or bumps, including the address of another role. A few static
checks read the program's ``seeds = [...]`` and the world's accounts: every seed scheme is
prefix-free (no two roles can derive the same bytes), every stored bump is the canonical one,
every bump comes from the program (never from an argument) and no address is shared by two
roles.

Class 7, arbitrary CPI: every instruction that calls the token program (or the system program)
given a look-alike in that slot: the System program, Memo, Token-2022, the associated token
program, a random key, or the Perpool program itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import pytest
from adversarial_cases import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    MEMO_PROGRAM_ID,
    SYSTEM_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    Case,
    case,
    close_ix,
    custody,
    liquidate_ix,
    open_ix,
    oracle,
    position_of,
    remove_collateral_ix,
    replace,
    run_cases,
    vault,
)
from adversary import Attack, World, honest_instructions
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID

from perpool import pda
from perpool.localnet import find_repo_root
from perpool.program import PROGRAM_ID
from perpool.trade import LONG, SHORT

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(5)]

SRC = find_repo_root() / "localnet" / "programs" / "perpool" / "src"


def off_curve(seeds: list[bytes], *, canonical: bool = False) -> Pubkey:
    """The address of ``seeds`` at the canonical bump, or at the next lower valid bump."""
    key, bump = Pubkey.find_program_address(seeds, PROGRAM_ID)
    if canonical:
        return key
    for other in range(bump - 1, -1, -1):
        try:
            return Pubkey.create_program_address([*seeds, bytes([other])], PROGRAM_ID)
        except Exception:  # on the curve: not a program address
            continue
    raise AssertionError(f"no second bump for {seeds}")


# ------------------------------------------------------------------------------------------
# Class 5: hostile transactions
# ------------------------------------------------------------------------------------------


async def position_seed_cases(world: World) -> list[Case]:
    """The attacker opens a market it holds no position in, at a position address derived from
    the wrong seeds; and acts on its own long with the position of the other side."""
    client, me, env = world.client, world.attacker, world.env
    main = pda.pool(env.pool)
    other = pda.pool(world.other.pool)
    out: list[Case] = []
    for key in ("short_sol", "long_ethsq", "long_eth"):
        market = world.markets[key]
        mine = custody(world, symbol_of_mint(world, market.mint))
        side = market.side.encode()
        flip = (SHORT if market.side == LONG else LONG).encode()
        honest = open_ix(world, me, market)
        collateral = custody(world, symbol_of_mint(world, market.collateral_mint))
        for label, seeds in (
            (
                "for the victim",
                [b"position", bytes(world.victim.key), bytes(main), bytes(mine), side],
            ),
            ("for the other side", [b"position", bytes(me.key), bytes(main), bytes(mine), flip]),
            (
                "for another custody",
                [b"position", bytes(me.key), bytes(main), bytes(custody(world, "USDT")), side],
            ),
            ("in pool other", [b"position", bytes(me.key), bytes(other), bytes(mine), side]),
            (
                "from the collateral custody",
                [b"position", bytes(me.key), bytes(main), bytes(collateral), side],
            ),
            ("without the side", [b"position", bytes(me.key), bytes(main), bytes(mine)]),
            ("with the owner last", [b"position", bytes(main), bytes(mine), side, bytes(me.key)]),
        ):
            if label == "from the collateral custody" and collateral == mine:
                continue
            out.append(
                case(
                    f"open {key} at a position address {label}",
                    replace(
                        client,
                        "open_position",
                        honest,
                        {"position": off_curve(seeds, canonical=True)},
                    ),
                    [me.wallet],
                    error="ConstraintSeeds",
                )
            )
        seeds = [b"position", bytes(me.key), bytes(main), bytes(mine), side]
        out.append(
            case(
                f"open {key} at its position seeds with a non-canonical bump",
                replace(client, "open_position", honest, {"position": off_curve(seeds)}),
                [me.wallet],
                error="ConstraintSeeds",
            )
        )
    # The attacker's long SOL is at [position, me, main, SOL, long]: a short SOL close naming it
    # passes the seeds (they use the position's own side) and fails on the collateral custody.
    short_sol = world.markets["short_sol"]
    out.append(
        case(
            "close a short SOL with the long SOL position",
            replace(
                client,
                "close_position",
                close_ix(world, me, short_sol, 5_000),
                {"position": position_of(world, world.markets["long_sol"], me)},
            ),
            [me.wallet],
            error="InvalidPosition",
        )
    )
    return out


def symbol_of_mint(world: World, mint: Pubkey) -> str:
    return next(s for s in world.env.specs if world.env.mint(s) == mint)


async def authority_seed_cases(world: World) -> list[Case]:
    """The transfer authority (the vaults' and LP mint's owner) at other addresses, in every
    instruction that moves tokens."""
    client, me = world.client, world.attacker
    honest = {h.label: h for h in await honest_instructions(world)}
    long_sol = world.markets["long_sol"]
    ixs: dict[str, tuple[str, Instruction, list[Keypair]]] = {
        "close_position": ("close_position", close_ix(world, me, long_sol, 5_000), [me.wallet]),
        "remove_collateral": (
            "remove_collateral",
            remove_collateral_ix(world, me, long_sol),
            [me.wallet],
        ),
        "liquidate": ("liquidate", liquidate_ix(world, me, long_sol, world.victim), [me.wallet]),
        "swap": ("swap", honest["swap SOL->USDC"].ix, [me.wallet]),
        "add_liquidity": ("add_liquidity", honest["add_liquidity SOL"].ix, [me.wallet]),
        "remove_liquidity": ("remove_liquidity", honest["remove_liquidity SOL"].ix, [me.wallet]),
    }
    admin = world.env.admin
    ixs["withdraw_protocol_fees"] = (
        "withdraw_protocol_fees",
        client.withdraw_protocol_fees_ix(
            world.env.pool,
            world.env.mint("USDC"),
            1,
            await world.env.token_account(admin.pubkey(), "USDC"),
            admin.pubkey(),
        ),
        [admin],
    )
    lookalikes = {
        "at a non-canonical bump": off_curve([b"transfer_authority"]),
        "derived with the pool": off_curve(
            [b"transfer_authority", bytes(pda.pool(world.env.pool))], canonical=True
        ),
        "at the perpool address": pda.perpool(),
    }
    out: list[Case] = []
    for label, (name, ix, signers) in ixs.items():
        for where, key in lookalikes.items():
            if name in ("swap", "add_liquidity") and where == "derived with the pool":
                continue
            out.append(
                case(
                    f"{label} with the transfer authority {where}",
                    replace(client, name, ix, {"transfer_authority": key}),
                    signers,
                    error="ConstraintSeeds",
                )
            )
    return out


async def creation_seed_cases(world: World) -> list[Case]:
    """Creation instructions (init, add_pool, add_custody) given accounts at other addresses:
    a second multisig or perpool at a non-canonical bump, a pool or LP mint for another name,
    a custody at its vault's or oracle's address (roles swapped)."""
    env, client = world.env, world.client
    admin = env.admin
    out: list[Case] = []
    # (The multisig is created first, so only its address can be tried here: with it canonical,
    # init fails creating it again, see the reinitialization cases.)
    for who in (admin, world.attacker.wallet):
        out.append(
            case(
                f"init with a second multisig at a non-canonical bump, signed by "
                f"{'the admin' if who is admin else 'the attacker'}",
                replace(
                    client,
                    "init",
                    client.init_ix([who.pubkey()], 1, who.pubkey(), upgrade_authority=who.pubkey()),
                    {"multisig": off_curve([b"multisig"])},
                ),
                [who],
                error="ConstraintSeeds",
            )
        )
    add_pool = client.add_pool_ix("seeds", admin.pubkey())
    for label, overrides in (
        ("for another name", {"pool": pda.pool("seeds2")}),
        ("at a non-canonical bump", {"pool": off_curve([b"pool", b"seeds"])}),
        (
            "with another pool's LP mint address",
            {"lp_token_mint": pda.lp_token_mint(pda.pool("seeds2"))},
        ),
        (
            "with the LP mint at a non-canonical bump",
            {"lp_token_mint": off_curve([b"lp_token_mint", bytes(pda.pool("seeds"))])},
        ),
        ("with the LP mint at the pool's address", {"lp_token_mint": pda.pool("seeds")}),
    ):
        out.append(
            case(
                f"add_pool {label}",
                replace(client, "add_pool", add_pool, overrides),
                [admin],
                error="ConstraintSeeds",
            )
        )
    mint = (
        await AsyncToken.create_mint(client.connection, admin, admin.pubkey(), 6, TOKEN_PROGRAM_ID)
    ).pubkey
    main = pda.pool(env.pool)
    add_custody = client.add_custody_ix(env.pool, mint, True, env.config("USDC"), admin.pubkey())
    vault_key = pda.custody_token_account(main, mint)
    custody_key = pda.custody(main, mint)
    for label, overrides in (
        ("with the custody at its vault's address", {"custody": vault_key}),
        ("with the vault at the custody's address", {"custody_token_account": custody_key}),
        ("with the oracle at the custody's address", {"custom_oracle": custody_key}),
        (
            "with the custody at a non-canonical bump",
            {"custody": off_curve([b"custody", bytes(main), bytes(mint)])},
        ),
        (
            "with the vault of the SOL custody's seeds",
            {
                "custody_token_account": off_curve(
                    [b"custody_token_account", bytes(main), bytes(env.mint("SOL"))], canonical=True
                )
            },
        ),
        (
            "with the oracle in pool other",
            {"custom_oracle": pda.custom_oracle(pda.pool(world.other.pool), mint)},
        ),
    ):
        out.append(
            case(
                f"add_custody {label}",
                replace(client, "add_custody", add_custody, overrides),
                [admin],
                error="ConstraintSeeds",
            )
        )
    # Existing accounts read at the wrong address: a vault of another custody, an LP mint at a
    # non-canonical bump, the SOL price written to the oracle of the same mint in pool other.
    honest = {h.label: h for h in await honest_instructions(world)}
    out.append(
        case(
            "add_liquidity SOL with ETH's vault (its PDA from other seeds)",
            replace(
                client,
                "add_liquidity",
                honest["add_liquidity SOL"].ix,
                {"custody_token_account": vault(world, "ETH")},
            ),
            [world.attacker.wallet],
            error="InvalidTokenAccount",
        )
    )
    out.append(
        case(
            "set the SOL price at the ETH custody's oracle seeds",
            replace(
                client,
                "set_custom_oracle_price",
                honest["set_custom_oracle_price SOL"].ix,
                {"oracle": oracle(world, "ETH")},
            ),
            [admin],
            error="ConstraintSeeds",
        )
    )
    return out


async def test_position_seeds(world: World, attack: Attack) -> None:
    assert await run_cases(attack, await position_seed_cases(world)) >= 20


async def test_transfer_authority_seeds(world: World, attack: Attack) -> None:
    assert await run_cases(attack, await authority_seed_cases(world)) >= 18


async def test_creation_seeds(world: World, attack: Attack) -> None:
    assert await run_cases(attack, await creation_seed_cases(world)) >= 15


# ------------------------------------------------------------------------------------------
# Class 5: static checks of the seed schemes and the world's addresses
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scheme:
    """A PDA seed scheme: a literal prefix and the lengths its other components can take."""

    literal: bytes
    parts: tuple[str, ...]
    """``key`` (32 bytes), ``name`` (a pool name, 1..32 bytes) or ``side`` (``long``/``short``)."""

    def lengths(self) -> set[int]:
        sizes = {len(self.literal)}
        for part in self.parts:
            options = {"key": {32}, "name": set(range(1, 33)), "side": {4, 5}}[part]
            sizes = {a + b for a in sizes for b in options}
        return sizes


def seed_constants() -> dict[str, bytes]:
    consts: dict[str, bytes] = {}
    for path in (SRC / "state").glob("*.rs"):
        text = path.read_text()
        for match in re.finditer(r"impl (\w+) \{(.*?)\n\}", text, re.S):
            for const in re.finditer(
                r"pub const (\w+): &'static \[u8\] = b\"(\w+)\";", match.group(2)
            ):
                consts[f"{match.group(1)}::{const.group(1)}"] = const.group(2).encode()
    return consts


def seed_expressions() -> Iterator[tuple[Path, str, str]]:
    """Every ``seeds = [...]`` of the program with the bump that follows it."""
    for path in sorted((SRC / "instructions").rglob("*.rs")):
        for match in re.finditer(
            r"seeds\s*=\s*\[(.*?)\],?\s*bump(\s*=\s*[\w.]+)?", path.read_text(), re.S
        ):
            yield path, match.group(1), (match.group(2) or "").replace("=", "").strip()


def parse_scheme(seeds: str, consts: dict[str, bytes]) -> Scheme:
    head, *rest = [s.strip() for s in seeds.split(",") if s.strip()]
    parts = []
    for part in rest:
        if part.endswith("name.as_bytes()"):
            parts.append("name")
        elif part.endswith(".seed()"):
            parts.append("side")
        elif part.endswith(".as_ref()"):
            parts.append("key")
        else:
            raise AssertionError(f"unknown seed component {part!r}")
    return Scheme(consts[head], tuple(parts))


def program_schemes() -> dict[bytes, Scheme]:
    consts = seed_constants()
    schemes: dict[bytes, Scheme] = {}
    for path, seeds, _ in seed_expressions():
        scheme = parse_scheme(seeds, consts)
        known = schemes.setdefault(scheme.literal, scheme)
        assert known == scheme, f"{path.name}: {scheme} differs from {known}"
    return schemes


def may_collide(a: Scheme, b: Scheme) -> bool:
    """Whether two schemes can produce the same seed bytes: one literal must be a prefix of the
    other and some total length must be shared (the components after a literal are free)."""
    shorter, longer = sorted((a.literal, b.literal), key=len)
    if not longer.startswith(shorter):
        return False
    return bool(a.lengths() & b.lengths())


async def test_seed_schemes_are_prefix_free(attack: Attack) -> None:
    schemes = program_schemes()
    expected = {
        b"perpool",
        b"multisig",
        b"transfer_authority",
        b"pool",
        b"lp_token_mint",
        b"custody",
        b"custody_token_account",
        b"oracle",
        b"position",
    }
    attack.static(
        "the program's seed schemes are the nine roles the client derives",
        set(schemes) == expected,
        f"{sorted(schemes)}",
    )
    clashes = [(a, b) for a, b in combinations(schemes.values(), 2) if may_collide(a, b)]
    attack.static(
        "no two seed schemes can derive the same bytes (prefix-free up to length)",
        not clashes,
        f"{clashes}",
    )


async def test_bumps_come_from_the_program(attack: Attack) -> None:
    """Every ``bump`` is found by the program (``bump``) or read from the account it created
    (``x.bump``): never an instruction argument, so no caller picks a non-canonical one."""
    bumps = [(path.name, bump) for path, _, bump in seed_expressions()]
    allowed = re.compile(r"^(|\w+\.(bump|transfer_authority_bump|lp_mint_bump))$")
    bad = [(name, bump) for name, bump in bumps if not allowed.match(bump)]
    attack.static(
        "every seeds constraint takes its bump from the program or the account's own record",
        bool(bumps) and not bad,
        f"{bad}",
    )


async def test_world_addresses_are_unique_and_canonical(world: World, attack: Attack) -> None:
    """Every role's address in the world (perpool, multisig, transfer authority, pools, LP mints,
    custodies, vaults, oracles, positions of every user, side and custody) is distinct from every
    other and from every wallet and mint; every stored bump is the canonical one."""
    client = world.client
    roles: dict[str, Pubkey] = {
        "perpool": pda.perpool(),
        "multisig": pda.multisig(),
        "transfer_authority": pda.transfer_authority(),
    }
    users = {"lp": world.lp.key, "victim": world.victim.key, "attacker": world.attacker.key}
    for env in (world.env, world.other):
        pool = pda.pool(env.pool)
        roles[f"pool {env.pool}"] = pool
        roles[f"lp mint {env.pool}"] = pda.lp_token_mint(pool)
        for symbol in env.specs:
            mint = env.mint(symbol)
            c = pda.custody(pool, mint)
            roles[f"custody {env.pool}/{symbol}"] = c
            roles[f"vault {env.pool}/{symbol}"] = pda.custody_token_account(pool, mint)
            roles[f"oracle {env.pool}/{symbol}"] = pda.custom_oracle(pool, mint)
            for who, key in users.items():
                for side in (LONG, SHORT):
                    roles[f"position {who}/{env.pool}/{symbol}/{side}"] = pda.position(
                        key, pool, c, side
                    )
    others = {**{f"wallet {k}": v for k, v in users.items()}, "program": PROGRAM_ID}
    for env in (world.env, world.other):
        others |= {f"mint {env.pool}/{s}": env.mint(s) for s in env.specs}
    everything = list(roles.items()) + list(others.items())
    seen: dict[Pubkey, str] = {}
    shared = []
    for name, key in everything:
        if key in seen:
            shared.append((seen[key], name))
        seen[key] = name
    attack.static(
        f"{len(roles)} PDAs of the world are distinct from each other and from wallets and mints",
        not shared,
        f"{shared}",
    )

    def canonical(seeds: list[bytes]) -> int:
        return Pubkey.find_program_address(seeds, PROGRAM_ID)[1]

    wrong: list[str] = []
    perpool = await client.fetch("Perpool", pda.perpool())
    multisig = await client.fetch("Multisig", pda.multisig())
    if perpool.bump != canonical([b"perpool"]):
        wrong.append("perpool")
    if perpool.transfer_authority_bump != canonical([b"transfer_authority"]):
        wrong.append("transfer authority")
    if multisig.bump != canonical([b"multisig"]):
        wrong.append("multisig")
    for env in (world.env, world.other):
        pool_key = pda.pool(env.pool)
        pool = await client.fetch("Pool", pool_key)
        if pool.bump != canonical([b"pool", env.pool.encode()]):
            wrong.append(f"pool {env.pool}")
        if pool.lp_mint_bump != canonical([b"lp_token_mint", bytes(pool_key)]):
            wrong.append(f"lp mint {env.pool}")
        for key in pool.custodies:
            c = await client.fetch("Custody", key)
            base = [bytes(pool_key), bytes(c.mint)]
            if c.bump != canonical([b"custody", *base]):
                wrong.append(f"custody {key}")
            if c.token_account_bump != canonical([b"custody_token_account", *base]):
                wrong.append(f"vault {key}")
            o = await client.fetch("CustomOracle", pda.custom_oracle(pool_key, c.mint))
            if o.bump != canonical([b"oracle", *base]):
                wrong.append(f"oracle {key}")
    positions = await client.program.account["Position"].all()
    for p in positions:
        side_name: str = type(p.account.side).__name__.lower()
        seeds = [
            b"position",
            bytes(p.account.owner),
            bytes(p.account.pool),
            bytes(p.account.custody),
            side_name.encode(),
        ]
        if (
            p.account.bump != canonical(seeds)
            or pda.position(p.account.owner, p.account.pool, p.account.custody, side_name)
            != p.public_key
        ):
            wrong.append(f"position {p.public_key}")
    attack.static(
        f"stored bumps of every account are canonical ({len(positions)} positions)",
        not wrong and len(positions) >= 6,
        f"{wrong}",
    )


# ------------------------------------------------------------------------------------------
# Class 7: look-alike programs
# ------------------------------------------------------------------------------------------

LOOKALIKES: dict[str, Pubkey] = {
    "the System program": SYSTEM_PROGRAM_ID,
    "Memo": MEMO_PROGRAM_ID,
    "Token-2022": TOKEN_2022_PROGRAM_ID,
    "the associated token program": ASSOCIATED_TOKEN_PROGRAM_ID,
    "a random key": Keypair().pubkey(),
    "the Perpool program": PROGRAM_ID,
}


async def token_program_cases(world: World) -> list[Case]:
    client, me, env = world.client, world.attacker, world.env
    honest = {h.label: h for h in await honest_instructions(world)}
    long_sol = world.markets["long_sol"]
    user: dict[str, tuple[str, Instruction]] = {
        "add_liquidity USDC": ("add_liquidity", honest["add_liquidity USDC"].ix),
        "remove_liquidity USDC": ("remove_liquidity", honest["remove_liquidity USDC"].ix),
        "open_position short_sol": (
            "open_position",
            open_ix(world, me, world.markets["short_sol"]),
        ),
        "close_position long_sol": ("close_position", close_ix(world, me, long_sol, 5_000)),
        "add_collateral long_sol": ("add_collateral", honest["add_collateral long_sol"].ix),
        "remove_collateral long_sol": (
            "remove_collateral",
            remove_collateral_ix(world, me, long_sol),
        ),
        "swap SOL->USDC": ("swap", honest["swap SOL->USDC"].ix),
        "liquidate the victim's long_sol": (
            "liquidate",
            liquidate_ix(world, me, long_sol, world.victim),
        ),
    }
    out: list[Case] = []
    for label, (name, ix) in user.items():
        for what, key in LOOKALIKES.items():
            out.append(
                case(
                    f"{label} with {what} as the token program",
                    replace(client, name, ix, {"token_program": key}),
                    [me.wallet],
                    error="InvalidProgramId",
                )
            )
    admin = env.admin
    receiving = await env.token_account(admin.pubkey(), "USDC")
    mint = (
        await AsyncToken.create_mint(client.connection, admin, admin.pubkey(), 6, TOKEN_PROGRAM_ID)
    ).pubkey
    admin_ixs: dict[str, tuple[str, Instruction]] = {
        "add_pool": ("add_pool", client.add_pool_ix("cpi", admin.pubkey())),
        "add_custody": (
            "add_custody",
            client.add_custody_ix(env.pool, mint, True, env.config("USDC"), admin.pubkey()),
        ),
        "withdraw_protocol_fees": (
            "withdraw_protocol_fees",
            client.withdraw_protocol_fees_ix(
                env.pool, env.mint("USDC"), 1, receiving, admin.pubkey()
            ),
        ),
        "remove_custody": (
            "remove_custody",
            client.remove_custody_ix(env.pool, env.mint("USDT"), receiving, admin.pubkey()),
        ),
    }
    for label, (name, ix) in admin_ixs.items():
        for what in ("Token-2022", "the System program"):
            out.append(
                case(
                    f"{label} with {what} as the token program",
                    replace(client, name, ix, {"token_program": LOOKALIKES[what]}),
                    [admin],
                    error="InvalidProgramId",
                    watch=[pda.pool("cpi")],
                )
            )
    # The system program slot of the instructions that create accounts.
    system_slots: dict[str, tuple[str, Instruction, Keypair]] = {
        "open_position short_sol": ("open_position", user["open_position short_sol"][1], me.wallet),
        "add_pool": ("add_pool", admin_ixs["add_pool"][1], admin),
        "add_custody": ("add_custody", admin_ixs["add_custody"][1], admin),
        "init": ("init", client.init_ix([admin.pubkey()], 1, admin.pubkey()), admin),
    }
    for label, (name, ix, signer) in system_slots.items():
        for what, key in (
            ("the token program", TOKEN_PROGRAM_ID),
            ("the Perpool program", PROGRAM_ID),
            ("a random key", LOOKALIKES["a random key"]),
        ):
            if name in ("add_custody", "init") and what == "a random key":
                continue
            out.append(
                case(
                    f"{label} with {what} as the system program",
                    replace(client, name, ix, {"system_program": key}),
                    [signer],
                    error="InvalidProgramId",
                    watch=[pda.pool("cpi")],
                )
            )
    return out


@pytest.mark.attack_class(7)
async def test_look_alike_programs(world: World, attack: Attack) -> None:
    assert await run_cases(attack, await token_program_cases(world)) >= 60
