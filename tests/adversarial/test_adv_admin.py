"""Class 27 (admin M-of-N) and class 28 (pause flags).

The world's admin is a 2-of-3 multisig here. Every admin instruction must carry the approval
of another signer bound to its exact sha256 (name, accounts, arguments): no approval, an
approval of a different instruction (other arguments or other accounts), a non-signer
sending or approving, a replay after execution and a double approval are all refused.
Each pause flag stops exactly its actions; everything else keeps working.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from adversary import Attack, Honest, World, build_world, honest_instructions
from rejections import simulate_error
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from trade_support import set_prices

from perpool import pda, trade
from perpool.client import all_permissions, instruction_hash
from perpool.localnet import LocalnetProcess

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(27)]


@pytest.fixture(scope="module")
def admin_net() -> Iterator[LocalnetProcess]:
    from conftest import start_validator

    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(admin_net: LocalnetProcess) -> AsyncIterator[World]:
    built = await build_world(admin_net.url, admin_net.faucet(), signers=3, min_signatures=2)
    yield built
    await built.env.client.close()


@dataclass(frozen=True)
class AdminCase:
    name: str
    ix: Instruction
    hash_accounts: list[Pubkey]
    variant: Instruction
    """The same instruction with other arguments or other accounts."""
    variant_accounts: list[Pubkey]

    @property
    def approved(self) -> bytes:
        return instruction_hash(self.name, self.hash_accounts, bytes(self.ix.data[8:]))

    @property
    def variant_approved(self) -> bytes:
        return instruction_hash(self.name, self.variant_accounts, bytes(self.variant.data[8:]))


async def admin_cases(world: World, sender: Pubkey) -> list[AdminCase]:
    """Each admin instruction as ``sender`` would send it, with a near-identical variant."""
    env, other, client = world.env, world.other, world.client
    mine = await env.token_account(env.admin.pubkey(), "USDC")
    thief = world.attacker.accounts["USDC"]
    sol = client.custody_keys(env.pool, env.mint("SOL")).custody
    usdc = client.custody_keys(env.pool, env.mint("USDC")).custody
    usdt = client.custody_keys(env.pool, env.mint("USDT")).custody
    usdt_thief = world.attacker.accounts["USDT"]
    usdt_mine = await env.token_account(env.admin.pubkey(), "USDT")
    paused = all_permissions(True) | {"allow_swap": False}
    fresh = world.other.mint("ETH")
    return [
        AdminCase(
            "add_pool",
            client.add_pool_ix("approved", sender),
            [pda.pool("approved")],
            client.add_pool_ix("approvee", sender),
            [pda.pool("approvee")],
        ),
        AdminCase(
            "add_custody",
            client.add_custody_ix(env.pool, fresh, False, other.config("ETH"), sender),
            [pda.pool(env.pool), fresh],
            client.add_custody_ix(env.pool, fresh, True, other.config("ETH"), sender),
            [pda.pool(env.pool), fresh],
        ),
        AdminCase(
            "set_permissions",
            client.set_permissions_ix(paused, sender),
            [pda.perpool()],
            client.set_permissions_ix(all_permissions(False), sender),
            [pda.perpool()],
        ),
        AdminCase(
            "set_custody_config",
            client.set_custody_config_ix(
                env.pool, env.mint("SOL"), env.config("SOL", max_leverage=200 * 10_000), sender
            ),
            [sol],
            client.set_custody_config_ix(
                env.pool, env.mint("SOL"), env.config("SOL", max_leverage=201 * 10_000), sender
            ),
            [sol],
        ),
        AdminCase(
            "set_oracle_authority",
            client.set_oracle_authority_ix(env.admin.pubkey(), sender),
            [pda.perpool()],
            client.set_oracle_authority_ix(world.attacker.key, sender),
            [pda.perpool()],
        ),
        AdminCase(
            "withdraw_protocol_fees",
            client.withdraw_protocol_fees_ix(env.pool, env.mint("USDC"), 1, mine, sender),
            [usdc, mine],
            client.withdraw_protocol_fees_ix(env.pool, env.mint("USDC"), 1, thief, sender),
            [usdc, thief],
        ),
        AdminCase(
            "remove_custody",
            client.remove_custody_ix(env.pool, env.mint("USDT"), usdt_mine, sender),
            [usdt, usdt_mine],
            client.remove_custody_ix(env.pool, env.mint("USDT"), usdt_thief, sender),
            [usdt, usdt_thief],
        ),
        AdminCase(
            "remove_pool",
            client.remove_pool_ix(other.pool, sender),
            [pda.pool(other.pool)],
            client.remove_pool_ix(env.pool, sender),
            [pda.pool(env.pool)],
        ),
    ]


async def test_admin_instructions_need_an_approval_of_that_exact_instruction(
    world: World, attack: Attack
) -> None:
    env, client = world.env, world.client
    admin, (cosigner, third) = env.admin, env.cosigners
    watch = [pda.pool("approved"), pda.pool("approvee")]
    for case in await admin_cases(world, admin.pubkey()):
        await attack.rejected(
            f"{case.name} with no approval",
            [case.ix],
            [admin],
            error="NotEnoughApprovals",
            watch=watch,
        )
        # The sender's own approval does not count twice.
        await client.approve(admin, case.approved)
        await attack.rejected(
            f"{case.name} approved only by its sender",
            [case.ix],
            [admin],
            error="NotEnoughApprovals",
            watch=watch,
        )
        await client.approve(cosigner, case.variant_approved)
        await attack.rejected(
            f"{case.name} with another signer's approval of a variant",
            [case.ix],
            [admin],
            error="NotEnoughApprovals",
            watch=watch,
        )
        # The approval binds the variant only: the third signer cannot ride on it either.
        await attack.rejected(
            f"{case.name} sent by the third signer on an approval of a variant",
            [Instruction(case.ix.program_id, case.ix.data, _resign(case.ix, admin, third))],
            [third],
            error="NotEnoughApprovals",
            watch=watch,
        )


def _resign(ix: Instruction, old: Keypair, new: Keypair) -> list[AccountMeta]:
    """``ix``'s accounts with ``old`` (the sender) replaced by ``new``."""
    return [
        AccountMeta(new.pubkey(), m.is_signer, m.is_writable) if m.pubkey == old.pubkey() else m
        for m in ix.accounts
    ]


async def test_non_signers_cannot_approve_or_send(world: World, attack: Attack) -> None:
    env, client = world.env, world.client
    thief = world.attacker.wallet
    for case in await admin_cases(world, thief.pubkey()):
        await attack.rejected(
            f"{case.name} sent by a non-signer",
            [case.ix],
            [thief],
            error="NotAMultisigSigner",
        )
        await attack.rejected(
            f"approval of {case.name} by a non-signer",
            [client.approve_ix(thief.pubkey(), case.approved)],
            [thief],
            error="NotAMultisigSigner",
        )
    # A non-signer approval never counts towards a real signer's instruction either.
    (case,) = [c for c in await admin_cases(world, env.admin.pubkey()) if c.name == "add_pool"]
    await attack.rejected(
        "add_pool after a non-signer's failed approval",
        [case.ix],
        [env.admin],
        error="NotEnoughApprovals",
        watch=[pda.pool("approved")],
    )


async def test_double_approval_and_replay(world: World, attack: Attack) -> None:
    env, client = world.env, world.client
    admin, cosigner = env.admin, env.cosigners[0]
    for case in await admin_cases(world, admin.pubkey()):
        # Executing these would remove or create accounts the module still uses (a second
        # add_pool fails at account creation, before the multisig is consulted).
        if case.name in (
            "add_pool",
            "add_custody",
            "remove_custody",
            "remove_pool",
            "withdraw_protocol_fees",
        ):
            continue
        await client.approve(cosigner, case.approved)
        await attack.rejected(
            f"{case.name}: the same signer approving twice",
            [client.approve_ix(cosigner.pubkey(), case.approved)],
            [cosigner],
            error="AlreadySigned",
        )
        await client.send([case.ix], [admin])
        await attack.rejected(
            f"{case.name}: replay after execution",
            [case.ix],
            [admin],
            error="NotEnoughApprovals",
            watch=[pda.pool("approved")],
        )
        await client.approve(cosigner, case.approved)
        await attack.rejected(
            f"{case.name}: an approval spent by a different instruction",
            [case.variant],
            [admin],
            error="NotEnoughApprovals",
            watch=[pda.pool("approvee")],
        )
        await client.approve(admin, case.approved)  # clears the round for the next case
    # Undo what executed: permissions back on, SOL's config back, the oracle authority kept.
    await client.set_permissions(all_permissions(True), admin, env.approvers)
    await env.configure("SOL", **world_config("SOL"))


def world_config(symbol: str) -> dict[str, object]:
    from adversary import CONFIGS

    return dict(CONFIGS[symbol])


# --------------------------------------------------------------------------------------------
# Class 28: pause flags
# --------------------------------------------------------------------------------------------

PAUSES: dict[str, tuple[str, ...]] = {
    "allow_add_liquidity": ("add_liquidity",),
    "allow_remove_liquidity": ("remove_liquidity",),
    "allow_open_position": ("open_position",),
    "allow_close_position": ("close_position",),
    "allow_collateral_change": ("add_collateral", "remove_collateral"),
    "allow_swap": ("swap",),
    "allow_liquidation": ("liquidate",),
}


def liquidation_of_victim(world: World) -> Honest:
    market = world.markets["long_sol"]
    ix = trade.liquidate_ix(
        world.client,
        world.attacker.key,
        market,
        world.victim.key,
        receiving_account=world.attacker.accounts["SOL"],
        owner_receiving_account=world.victim.accounts["SOL"],
    )
    return Honest("liquidate", "liquidate victim long_sol", ix, (world.attacker.wallet,), None)


@pytest.mark.attack_class(28)
@pytest.mark.parametrize("flag", list(PAUSES))
async def test_each_pause_flag_stops_exactly_its_actions(
    world: World, attack: Attack, flag: str
) -> None:
    env, client = world.env, world.client
    await set_prices(env)
    honest = [*await honest_instructions(world), liquidation_of_victim(world)]
    await client.set_permissions(all_permissions(True) | {flag: False}, env.admin, env.approvers)
    try:
        for case in honest:
            if case.name in PAUSES[flag]:
                await attack.rejected(
                    f"{case.label} while {flag} is off",
                    [case.ix],
                    case.signers,
                    error="ActionPaused",
                )
            elif case.name == "liquidate":
                # A healthy position: the only refusal must be that, not the pause.
                error = await simulate_error(client, [case.ix], case.signers)
                async with attack.holds(f"{case.label} unaffected by {flag}"):
                    assert error == "NotLiquidatable", error
            elif case.name not in ("set_custom_oracle_price",):
                error = await simulate_error(client, [case.ix], case.signers)
                async with attack.holds(f"{case.label} still works while {flag} is off"):
                    assert error is None, f"{case.label}: {error}"
    finally:
        await client.set_permissions(all_permissions(True), env.admin, env.approvers)


@pytest.mark.attack_class(28)
async def test_everything_paused_then_resumed(world: World, attack: Attack) -> None:
    env, client = world.env, world.client
    await set_prices(env)
    honest = await honest_instructions(world)
    await client.set_permissions(all_permissions(False), env.admin, env.approvers)
    try:
        for case in honest:
            if any(case.name in names for names in PAUSES.values()):
                await attack.rejected(
                    f"{case.label} with every action paused",
                    [case.ix],
                    case.signers,
                    error="ActionPaused",
                )
            else:
                error = await simulate_error(client, [case.ix], case.signers)
                async with attack.holds(f"{case.label} (crank/oracle) works while paused"):
                    assert error is None, f"{case.label}: {error}"
    finally:
        await client.set_permissions(all_permissions(True), env.admin, env.approvers)
    for case in await honest_instructions(world):
        error = await simulate_error(client, [case.ix], case.signers)
        assert error is None, f"{case.label} after resuming: {error}"
