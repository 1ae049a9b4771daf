"""Class 23, remaining accounts: the instructions and views that value the whole pool take
every custody and then their oracles, in pool order. Each is given the list out of order,
with duplicates, with another pool's accounts, with accounts missing or extra, with oracles
swapped between custodies or one custody's oracle replaced by another's, and refuses with
``InvalidRemainingAccounts``; the honest list still values the pool the same way after all of
them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from adversarial_cases import Case, case, readonly, remaining, run_cases, with_remaining
from adversary import USD, Attack, World, honest_instructions
from rejections import simulate_error
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpool import pda

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(23)]

Variant = Callable[[list[Pubkey], list[Pubkey]], list[Pubkey]]
"""Builds a remaining-account list from the pool's custodies and oracles."""


def variants(world: World, foreign: tuple[list[Pubkey], list[Pubkey]]) -> dict[str, Variant]:
    fc, fo = foreign
    sol_vault = pda.custody_token_account(pda.pool(world.env.pool), world.env.mint("SOL"))

    def swap(keys: list[Pubkey], i: int, j: int) -> list[Pubkey]:
        out = list(keys)
        out[i], out[j] = out[j], out[i]
        return out

    def put(keys: list[Pubkey], i: int, key: Pubkey) -> list[Pubkey]:
        out = list(keys)
        out[i] = key
        return out

    return {
        "custodies reversed": lambda c, o: [*c[::-1], *o[::-1]],
        "two custodies swapped": lambda c, o: [*swap(c, 0, 1), *o],
        "two oracles swapped": lambda c, o: [*c, *swap(o, 0, 2)],
        "a custody listed twice": lambda c, o: [*put(c, 1, c[0]), *o],
        "an oracle listed twice": lambda c, o: [*c, *put(o, 1, o[0])],
        "another pool's custodies and oracles": lambda c, o: [*fc, *fo],
        "one custody from another pool": lambda c, o: [*put(c, 0, fc[0]), *o],
        "one oracle from another pool": lambda c, o: [*c, *put(o, 0, fo[0])],
        "the last oracle missing": lambda c, o: [*c, *o[:-1]],
        "a custody and its oracle missing": lambda c, o: [*c[:-1], *o[:-1]],
        "an extra account at the end": lambda c, o: [*c, *o, Keypair().pubkey()],
        "another pool's custody and oracle appended": lambda c, o: [*c, fc[0], *o, fo[0]],
        "oracles before custodies": lambda c, o: [*o, *c],
        "custody and oracle interleaved": lambda c, o: [
            k for pair in zip(c, o, strict=True) for k in pair
        ],
        "a vault in a custody's place": lambda c, o: [*put(c, 0, sol_vault), *o],
        "nothing": lambda c, o: [],
    }


async def pool_lists(world: World, name: str) -> tuple[list[Pubkey], list[Pubkey]]:
    metas = await world.client.pool_remaining_accounts(name)
    keys = [m.pubkey for m in metas]
    half = len(keys) // 2
    return keys[:half], keys[half:]


def view_ixs(world: World, honest: list[AccountMeta]) -> dict[str, Instruction]:
    """The pool views, each with the honest remaining accounts."""
    client, env = world.client, world.env
    pool = pda.pool(env.pool)
    base = {"perpool": pda.perpool(), "pool": pool, "lp_token_mint": pda.lp_token_mint(pool)}
    keys = client.custody_keys(env.pool, env.mint("USDC"))
    custody_view = base | {"custody": keys.custody, "custody_oracle": keys.oracle}
    return {
        "get_lp_token_price": client.ix("get_lp_token_price", accounts=base, remaining=honest),
        "get_assets_under_management": client.ix(
            "get_assets_under_management", accounts=base, remaining=honest
        ),
        "get_add_liquidity_amount_and_fee": client.ix(
            "get_add_liquidity_amount_and_fee", 100 * USD, accounts=custody_view, remaining=honest
        ),
        "get_remove_liquidity_amount_and_fee": client.ix(
            "get_remove_liquidity_amount_and_fee",
            10 * USD,
            accounts=custody_view,
            remaining=honest,
        ),
    }


async def remaining_cases(world: World) -> list[Case]:
    client = world.client
    custodies, oracles = await pool_lists(world, world.env.pool)
    table = variants(world, await pool_lists(world, world.other.pool))
    honest = {h.label: h for h in await honest_instructions(world)}
    targets: dict[str, tuple[str, Instruction, tuple[Keypair, ...], list[str]]] = {
        "add_liquidity USDC": (
            "add_liquidity",
            honest["add_liquidity USDC"].ix,
            honest["add_liquidity USDC"].signers,
            list(table),
        ),
        "remove_liquidity SOL": (
            "remove_liquidity",
            honest["remove_liquidity SOL"].ix,
            honest["remove_liquidity SOL"].signers,
            list(table),
        ),
        "update_pool_aum": ("update_pool_aum", honest["update_pool_aum"].ix, (), list(table)),
    }
    for name, ix in view_ixs(world, readonly([*custodies, *oracles])).items():
        picks = [
            "two oracles swapped",
            "one custody from another pool",
            "a custody listed twice",
            "the last oracle missing",
        ]
        assert await simulate_error(client, [ix]) is None, name
        targets[name] = (name, ix, (), picks)
    out: list[Case] = []
    for label, (name, ix, signers, picks) in targets.items():
        assert len(remaining(client, name, ix)) == len(custodies) + len(oracles)
        for variant in picks:
            keys = table[variant](custodies, oracles)
            out.append(
                case(
                    f"{label} with {variant}",
                    with_remaining(client, name, ix, readonly(keys)),
                    signers,
                    error="InvalidRemainingAccounts",
                )
            )
    # A pool valued with another pool's (complete, correct) list, and the reverse.
    other_c, other_o = await pool_lists(world, world.other.pool)
    aum = honest["update_pool_aum"].ix
    out.append(
        case(
            "update_pool_aum of pool main with pool other's list",
            with_remaining(client, "update_pool_aum", aum, readonly([*other_c, *other_o])),
            error="InvalidRemainingAccounts",
        )
    )
    out.append(
        case(
            "update_pool_aum of pool other with pool main's list",
            Instruction(
                aum.program_id,
                aum.data,
                [
                    AccountMeta(pda.pool(world.other.pool), False, True),
                    *readonly([*custodies, *oracles]),
                ],
            ),
            error="InvalidRemainingAccounts",
        )
    )
    return out


async def test_remaining_accounts_must_be_the_pool_in_order(world: World, attack: Attack) -> None:
    before = await world.client.fetch("Pool", pda.pool(world.env.pool))
    assert await run_cases(attack, await remaining_cases(world)) >= 60
    after = await world.client.fetch("Pool", pda.pool(world.env.pool))
    assert (after.aum_usd, after.aum_updated_at) == (before.aum_usd, before.aum_updated_at)


async def test_the_honest_list_still_values_the_pool(world: World, attack: Attack) -> None:
    """Writable flags on the honest list change nothing: the pool's AUM updates to what the
    view reports."""
    client = world.client
    custodies, oracles = await pool_lists(world, world.env.pool)
    honest = {h.label: h for h in await honest_instructions(world)}
    aum = honest["update_pool_aum"].ix
    writable = [AccountMeta(k, False, True) for k in [*custodies, *oracles]]
    async with attack.holds("update_pool_aum with every remaining account writable"):
        view = await client.view(
            "get_assets_under_management",
            accounts={
                "perpool": pda.perpool(),
                "pool": pda.pool(world.env.pool),
                "lp_token_mint": pda.lp_token_mint(pda.pool(world.env.pool)),
            },
            remaining=readonly([*custodies, *oracles]),
        )
        await client.send([with_remaining(client, "update_pool_aum", aum, writable)])
        pool = await client.fetch("Pool", pda.pool(world.env.pool))
        assert pool.aum_usd == view.spot_usd
