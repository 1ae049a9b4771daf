"""Admin through the 2-of-3 multisig: approvals bound to the exact instruction, parameter
bounds, pause flags, oracle authority, protocol fees, removing custodies and pools.

One validator for the module (``init`` runs once per chain); tests share the exchange and put
back what they change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import PoolEnv, build_pool_env
from rejections import assert_rejected, assert_unchanged_failure, chain_state, simulate_error
from solana.rpc.commitment import Confirmed
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from support import transaction_logs

from perpool import lp, pda, trade, views
from perpool.client import all_permissions, instruction_hash
from perpool.custody_config import BPS, RATE_ONE, custody_config
from perpool.localnet import LocalnetProcess
from perpool.program import parse_events
from perpool.trade import (
    add_collateral_ix,
    close_position_ix,
    liquidate_ix,
    open_position_ix,
    remove_collateral_ix,
    swap_ix,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SOL = 10**9
USDC = 10**6
USD = 10**6
# Prices stay valid for the whole module (no test here moves the clock).
BASE: dict[str, Any] = {"max_price_age_sec": 3_600}

MAX_POOLS = 32  # state/perpool.rs


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    built = await build_pool_env(
        net.url, net.faucet(), configs={"SOL": BASE, "USDC": BASE}, signers=3, min_signatures=2
    )
    yield built
    await built.client.close()


def hash_of(name: str, ix: Instruction, accounts: list[Pubkey]) -> bytes:
    return instruction_hash(name, accounts, bytes(ix.data[8:]))


async def multisig(env: PoolEnv) -> Any:
    return await env.client.fetch("Multisig", pda.multisig())


async def perpool_config(env: PoolEnv) -> Any:
    return await env.client.fetch("Perpool", pda.perpool())


# ---- multisig ---------------------------------------------------------------------------------


async def test_init_created_the_two_of_three_multisig(env: PoolEnv) -> None:
    ms = await multisig(env)
    signers = [env.admin.pubkey(), *(c.pubkey() for c in env.cosigners)]
    assert (ms.num_signers, ms.min_signatures, ms.num_signed) == (3, 2, 0)
    assert list(ms.signers[:3]) == signers
    assert all(s == Pubkey.default() for s in ms.signers[3:])
    config = await perpool_config(env)
    assert config.oracle_authority == env.admin.pubkey()
    assert list(config.pools) == [pda.pool(env.pool)]
    assert all(getattr(config.permissions, k) for k in all_permissions(True))


async def test_init_twice_is_rejected(env: PoolEnv) -> None:
    stranger = await env.new_wallet()
    for sender, signers in ((env.admin, []), (stranger, [stranger])):
        ix = env.client.init_ix(
            [sender.pubkey()], 1, sender.pubkey(), upgrade_authority=sender.pubkey()
        )
        failure = await assert_unchanged_failure(env.client, [ix], signers)
        assert any("already in use" in line for line in failure.logs), failure.logs
    ms = await multisig(env)
    assert (ms.num_signers, ms.min_signatures) == (3, 2)


async def test_admin_instruction_without_approvals_is_rejected(env: PoolEnv) -> None:
    ix = env.client.set_permissions_ix(all_permissions(False), env.admin.pubkey())
    await assert_rejected(env.client, [ix], error="NotEnoughApprovals")
    assert (await perpool_config(env)).permissions.allow_swap


async def test_one_recorded_approval_from_another_signer_executes(env: PoolEnv) -> None:
    client = env.client
    new_authority = Keypair().pubkey()
    ix = client.set_oracle_authority_ix(new_authority, env.admin.pubkey())
    approved = hash_of("set_oracle_authority", ix, [pda.perpool()])
    sig = await client.approve(env.cosigners[0], approved)
    logs = await transaction_logs(client.connection, sig)
    [approval] = parse_events(client.program, logs)
    assert approval.name == "AdminApproval"
    assert (approval.data.signer, approval.data.signed, approval.data.required) == (
        env.cosigners[0].pubkey(),
        1,
        2,
    )
    ms = await multisig(env)
    assert bytes(ms.instruction_hash) == approved
    assert list(ms.signed[:3]) == [False, True, False]

    sig = await client.send([ix])
    assert (await perpool_config(env)).oracle_authority == new_authority
    [action] = parse_events(client.program, await transaction_logs(client.connection, sig))
    assert (action.name, action.data.instruction, action.data.target) == (
        "AdminAction",
        "set_oracle_authority",
        new_authority,
    )
    # The round is used up: the same instruction again needs new approvals.
    ms = await multisig(env)
    assert (ms.num_signed, bytes(ms.instruction_hash)) == (0, bytes(32))
    await assert_rejected(client, [ix], error="NotEnoughApprovals")

    # Any two signers will do: the third signer executes with the admin's approval.
    await client.set_oracle_authority(env.admin.pubkey(), env.cosigners[1], [env.admin])
    assert (await perpool_config(env)).oracle_authority == env.admin.pubkey()


async def test_senders_own_approval_does_not_count_twice(env: PoolEnv) -> None:
    ix = env.client.set_permissions_ix(all_permissions(False), env.admin.pubkey())
    await env.client.approve(env.admin, hash_of("set_permissions", ix, [pda.perpool()]))
    await assert_rejected(env.client, [ix], error="NotEnoughApprovals")
    assert (await multisig(env)).num_signed == 1


async def test_approval_of_other_arguments_or_accounts_does_not_count(env: PoolEnv) -> None:
    client = env.client
    approver = env.cosigners[0]
    paused = all_permissions(True) | {"allow_swap": False}
    everything_paused = all_permissions(False)
    await client.approve(
        approver,
        hash_of(
            "set_permissions",
            client.set_permissions_ix(paused, env.admin.pubkey()),
            [pda.perpool()],
        ),
    )
    await assert_rejected(
        client,
        [client.set_permissions_ix(everything_paused, env.admin.pubkey())],
        error="NotEnoughApprovals",
    )

    # Same config bytes, other custody.
    config = env.config("SOL", **BASE)
    sol_ix = client.set_custody_config_ix(env.pool, env.mint("SOL"), config, env.admin.pubkey())
    sol_custody = client.custody_keys(env.pool, env.mint("SOL")).custody
    await client.approve(approver, hash_of("set_custody_config", sol_ix, [sol_custody]))
    usdc_ix = client.set_custody_config_ix(env.pool, env.mint("USDC"), config, env.admin.pubkey())
    await assert_rejected(client, [usdc_ix], error="NotEnoughApprovals")
    # The approval still stands for the instruction it was given for.
    await client.send([sol_ix])
    assert (await perpool_config(env)).permissions.allow_swap


async def test_non_signer_can_neither_approve_nor_execute(env: PoolEnv) -> None:
    client = env.client
    stranger = await env.new_wallet()
    ix = client.set_permissions_ix(all_permissions(False), stranger.pubkey())
    approved = hash_of("set_permissions", ix, [pda.perpool()])
    await assert_rejected(
        client,
        [client.approve_ix(stranger.pubkey(), approved)],
        [stranger],
        error="NotAMultisigSigner",
    )
    # Even with a real signer's approval of exactly this instruction.
    await client.approve(env.cosigners[0], approved)
    await assert_rejected(client, [ix], [stranger], error="NotAMultisigSigner")


async def test_second_approval_by_the_same_signer_is_already_signed(env: PoolEnv) -> None:
    client = env.client
    ix = client.set_permissions_ix(
        all_permissions(True) | {"allow_liquidation": False}, env.admin.pubkey()
    )
    approved = hash_of("set_permissions", ix, [pda.perpool()])
    await client.approve(env.cosigners[1], approved)
    await assert_rejected(
        client,
        [client.approve_ix(env.cosigners[1].pubkey(), approved)],
        [env.cosigners[1]],
        error="AlreadySigned",
    )


async def test_admin_that_did_not_sign_is_rejected(env: PoolEnv) -> None:
    client = env.client
    cosigner = env.cosigners[0]
    ix = client.set_permissions_ix(
        all_permissions(True) | {"allow_open_position": False}, cosigner.pubkey()
    )
    await client.approve(env.cosigners[1], hash_of("set_permissions", ix, [pda.perpool()]))
    unsigned = Instruction(
        ix.program_id,
        ix.data,
        [
            AccountMeta(m.pubkey, False, m.is_writable) if m.pubkey == cosigner.pubkey() else m
            for m in ix.accounts
        ],
    )
    await assert_rejected(client, [unsigned], error="AccountNotSigner")
    approve = client.approve_ix(cosigner.pubkey(), bytes(32))
    unsigned_approve = Instruction(
        approve.program_id,
        approve.data,
        [AccountMeta(cosigner.pubkey(), False, False), approve.accounts[1]],
    )
    await assert_rejected(client, [unsigned_approve], error="AccountNotSigner")


# ---- parameter bounds -------------------------------------------------------------------------

BAD_CONFIGS: list[tuple[str, dict[str, Any], str]] = [
    (
        "min initial leverage above max initial",
        {"min_initial_leverage": 20 * BPS, "max_initial_leverage": 10 * BPS},
        "InvalidPricingConfig",
    ),
    (
        "max initial leverage above max leverage",
        {"max_initial_leverage": 300 * BPS},
        "InvalidPricingConfig",
    ),
    (
        "max leverage above 1000x",
        {"max_initial_leverage": 1_000 * BPS, "max_leverage": 1_000 * BPS + 1},
        "InvalidPricingConfig",
    ),
    ("min initial leverage below 1x", {"min_initial_leverage": BPS - 1}, "InvalidPricingConfig"),
    ("max utilization zero", {"max_utilization_bps": 0}, "InvalidPricingConfig"),
    ("max utilization above 100%", {"max_utilization_bps": BPS + 1}, "InvalidPricingConfig"),
    ("open fee above 10%", {"open_position_bps": 1_001}, "InvalidFeeConfig"),
    ("liquidity max fee above 10%", {"liquidity_max_fee_bps": 1_001}, "InvalidFeeConfig"),
    (
        "liquidity min fee above max",
        {"liquidity_min_fee_bps": 20, "liquidity_max_fee_bps": 10},
        "InvalidFeeConfig",
    ),
    ("liquidity fee K above 100%", {"liquidity_fee_k_bps": BPS + 1}, "InvalidFeeConfig"),
    ("minimum fee above $100", {"min_fee_usd": 100 * USD + 1}, "InvalidFeeConfig"),
    ("protocol share above 100%", {"protocol_share_bps": BPS + 1}, "InvalidFeeConfig"),
    (
        "first liquidation step not at the maintenance margin",
        {"liquidation_steps": ((9_000, BPS),)},
        "InvalidLiquidationConfig",
    ),
    (
        "last liquidation step does not close everything",
        {"liquidation_steps": ((BPS, 5_000),)},
        "InvalidLiquidationConfig",
    ),
    (
        "liquidation steps not falling",
        {"liquidation_steps": ((BPS, 5_000), (BPS, BPS))},
        "InvalidLiquidationConfig",
    ),
    (
        "liquidation close fractions shrinking",
        {"liquidation_steps": ((BPS, BPS), (5_000, 5_000))},
        "InvalidLiquidationConfig",
    ),
    (
        "insurance fraction above 100%",
        {"insurance_fund_fraction_bps": BPS + 1},
        "InvalidLiquidationConfig",
    ),
    (
        "auto-close fee above $1000",
        {"auto_close_fee_usd": 1_000 * USD + 1},
        "InvalidLiquidationConfig",
    ),
    (
        "funding C above a million hours",
        {"funding_c": 1_000_001, "max_funding_rate": 1},
        "InvalidFundingConfig",
    ),
    (
        "funding on with no rate cap",
        {"funding_c": 10, "max_funding_rate": 0},
        "InvalidFundingConfig",
    ),
    (
        "max funding above 10% per hour",
        {"max_funding_rate": RATE_ONE // 10 + 1},
        "InvalidFundingConfig",
    ),
    ("slippage coefficient above 100%", {"long_b_bps": BPS + 1}, "InvalidSlippageConfig"),
    ("short slippage coefficient above 100%", {"short_a_bps": BPS + 1}, "InvalidSlippageConfig"),
    (
        "payoff changed after creation",
        {"payoff": "linear", "payoff_scale": RATE_ONE, "max_profit_bps": BPS},
        "InvalidPayoffConfig",
    ),
    ("optimal utilization zero", {"optimal_utilization": 0}, "InvalidBorrowRateConfig"),
    (
        "optimal utilization above 100%",
        {"optimal_utilization": RATE_ONE + 1},
        "InvalidBorrowRateConfig",
    ),
    (
        "peak hourly rate above 10%",
        {"base_rate": RATE_ONE // 20, "hourly_rate": RATE_ONE // 20, "slope2": 1},
        "InvalidBorrowRateConfig",
    ),
    ("rate overflow", {"base_rate": 2**64 - 1, "hourly_rate": 1}, "InvalidBorrowRateConfig"),
    ("min ratio above target", {"min_bps": 3_000, "target_bps": 2_000}, "InvalidTokenRatios"),
    ("target ratio above max", {"target_bps": 6_000, "max_bps": 5_000}, "InvalidTokenRatios"),
    ("max ratio above 100%", {"max_bps": BPS + 1}, "InvalidTokenRatios"),
    ("price error zero", {"max_price_error_bps": 0}, "InvalidOracleConfig"),
    ("price error above 100%", {"max_price_error_bps": BPS + 1}, "InvalidOracleConfig"),
    ("price age zero", {"max_price_age_sec": 0}, "InvalidOracleConfig"),
    ("price age above a day", {"max_price_age_sec": 86_401}, "InvalidOracleConfig"),
]


@pytest.mark.parametrize(
    ("overrides", "error"), [pytest.param(o, e, id=name) for name, o, e in BAD_CONFIGS]
)
async def test_custody_config_bounds(env: PoolEnv, overrides: dict[str, Any], error: str) -> None:
    client = env.client
    config = env.config("SOL", **(BASE | overrides))
    ix = client.set_custody_config_ix(env.pool, env.mint("SOL"), config, env.admin.pubkey())
    sol_custody = client.custody_keys(env.pool, env.mint("SOL")).custody
    await client.approve(env.cosigners[0], hash_of("set_custody_config", ix, [sol_custody]))
    await assert_rejected(client, [ix], error=error)


async def test_custody_config_at_the_bounds_is_accepted(env: PoolEnv) -> None:
    edge = {
        "min_initial_leverage": 1_000 * BPS,
        "max_initial_leverage": 1_000 * BPS,
        "max_leverage": 1_000 * BPS,
        "max_utilization_bps": BPS,
        "open_position_bps": 1_000,
        "protocol_share_bps": BPS,
        "hourly_rate": RATE_ONE // 10,
        "optimal_utilization": RATE_ONE,
        "min_bps": 5_000,
        "target_bps": 5_000,
        "max_bps": 5_000,
        "max_price_error_bps": BPS,
        "max_price_age_sec": 86_400,
        "liquidity_min_fee_bps": 1_000,
        "liquidity_max_fee_bps": 1_000,
        "liquidity_fee_k_bps": BPS,
        "min_fee_usd": 100 * USD,
        "liquidation_steps": ((BPS, 2_500), (7_500, 5_000), (5_000, 5_000), (1, BPS)),
        "insurance_fund_fraction_bps": BPS,
        "auto_close_fee_usd": 1_000 * USD,
        "funding_c": 1_000_000,
        "max_funding_rate": RATE_ONE // 10,
        "long_a_bps": BPS,
        "short_b_bps": BPS,
    }
    await env.client.set_custody_config(
        env.pool, env.mint("SOL"), env.config("SOL", **edge), env.admin, env.approvers
    )
    custody = await env.custody("SOL")
    assert custody.pricing.max_leverage == 1_000 * BPS
    assert custody.oracle.max_price_age_sec == 86_400
    assert custody.liquidation.num_steps == 4
    assert custody.liquidation.steps[3].margin_fraction_bps == 1
    assert custody.funding.funding_c == 1_000_000
    await env.configure("SOL", **BASE)
    assert (await env.custody("SOL")).pricing.max_leverage == 250 * BPS


async def test_custom_oracle_account_must_be_the_custodys_pda(env: PoolEnv) -> None:
    client = env.client
    usdc_oracle = client.custody_keys(env.pool, env.mint("USDC")).oracle
    config = env.config("SOL", **BASE)
    config["oracle"]["oracle_account"] = usdc_oracle
    ix = client.set_custody_config_ix(env.pool, env.mint("SOL"), config, env.admin.pubkey())
    await client.approve(
        env.cosigners[0],
        hash_of("set_custody_config", ix, [client.custody_keys(env.pool, env.mint("SOL")).custody]),
    )
    await assert_rejected(client, [ix], error="InvalidOracleConfig")


async def test_add_custody_validates_its_config(env: PoolEnv) -> None:
    client = env.client
    mint = await AsyncToken.create_mint(
        client.connection, env.admin, env.admin.pubkey(), 8, TOKEN_PROGRAM_ID
    )
    oracle = client.custody_keys(env.pool, mint.pubkey).oracle
    config = custody_config(
        oracle,
        client_types=client.program.type,
        min_initial_leverage=5 * BPS,
        max_initial_leverage=2 * BPS,
    )
    ix = client.add_custody_ix(env.pool, mint.pubkey, False, config, env.admin.pubkey())
    await client.approve(
        env.cosigners[0], hash_of("add_custody", ix, [pda.pool(env.pool), mint.pubkey])
    )
    await assert_rejected(client, [ix], error="InvalidPricingConfig")
    assert (
        await client.connection.get_account_info(client.custody_keys(env.pool, mint.pubkey).custody)
    ).value is None


async def test_pool_and_custody_cannot_be_created_twice(env: PoolEnv) -> None:
    client = env.client
    pool_ix = client.add_pool_ix(env.pool, env.admin.pubkey())
    await client.approve(env.cosigners[0], hash_of("add_pool", pool_ix, [pda.pool(env.pool)]))
    failure = await assert_unchanged_failure(client, [pool_ix])
    assert any("already in use" in line for line in failure.logs), failure.logs
    sol = env.mint("SOL")
    custody_ix = client.add_custody_ix(
        env.pool, sol, False, env.config("SOL", **BASE), env.admin.pubkey()
    )
    await client.approve(
        env.cosigners[0], hash_of("add_custody", custody_ix, [pda.pool(env.pool), sol])
    )
    failure = await assert_unchanged_failure(client, [custody_ix])
    assert any("already in use" in line for line in failure.logs), failure.logs


async def test_add_pool_rejects_an_empty_name(env: PoolEnv) -> None:
    ix = env.client.add_pool_ix("", env.admin.pubkey())
    await env.client.approve(env.cosigners[0], hash_of("add_pool", ix, [pda.pool("")]))
    await assert_rejected(env.client, [ix], error="InvalidPoolName")


# ---- pause flags ------------------------------------------------------------------------------


@dataclass
class Trading:
    """Liquidity, a healthy 2x long (``trader``) and a liquidatable 90x long (``gambler``)."""

    provider: Keypair
    provider_sol: Pubkey
    provider_usdc: Pubkey
    provider_lp: Pubkey
    trader: Keypair
    trader_sol: Pubkey
    gambler: Keypair
    gambler_sol: Pubkey
    newcomer: Keypair
    newcomer_sol: Pubkey
    liquidator: Keypair
    liquidator_sol: Pubkey

    def watched(self) -> list[Pubkey]:
        return [
            self.provider_sol,
            self.provider_usdc,
            self.provider_lp,
            self.trader_sol,
            self.gambler_sol,
            self.newcomer_sol,
            self.liquidator_sol,
        ]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def trading(env: PoolEnv) -> Trading:
    client = env.client
    provider = await env.new_wallet()
    provider_sol = await env.fund(provider.pubkey(), "SOL", 200 * SOL)
    provider_usdc = await env.fund(provider.pubkey(), "USDC", 20_000 * USDC)
    provider_lp = await env.lp_account(provider.pubkey())
    for symbol, account, amount in (
        ("SOL", provider_sol, 100 * SOL),
        ("USDC", provider_usdc, 10_000 * USDC),
    ):
        await lp.add_liquidity(
            client,
            provider,
            env.pool,
            env.mint(symbol),
            amount,
            funding_account=account,
            lp_token_account=provider_lp,
        )
    market = trade.Market.long(env.pool, env.mint("SOL"))
    wallets = {}
    for name in ("trader", "gambler", "newcomer", "liquidator"):
        wallet = await env.new_wallet()
        wallets[name] = (wallet, await env.fund(wallet.pubkey(), "SOL", 10 * SOL))
    trader, trader_sol = wallets["trader"]
    gambler, gambler_sol = wallets["gambler"]
    await client.send(
        [
            open_position_ix(
                client,
                trader.pubkey(),
                market,
                collateral_amount=SOL,
                size_usd=200 * USD,
                funding_account=trader_sol,
            )
        ],
        [trader],
    )
    await client.send(
        [
            open_position_ix(
                client,
                gambler.pubkey(),
                market,
                collateral_amount=SOL // 10,
                size_usd=900 * USD,
                funding_account=gambler_sol,
            )
        ],
        [gambler],
    )
    await env.set_price("SOL", 99_20)  # -0.8%: the 90x long is below its 0.4% maintenance margin
    assert await views.liquidation_state(client, market, gambler.pubkey())
    assert not await views.liquidation_state(client, market, trader.pubkey())
    return Trading(
        provider,
        provider_sol,
        provider_usdc,
        provider_lp,
        trader,
        trader_sol,
        gambler,
        gambler_sol,
        *wallets["newcomer"],
        *wallets["liquidator"],
    )


Action = Callable[[], Awaitable[tuple[list[Instruction], list[Keypair]]]]


def actions(env: PoolEnv, t: Trading) -> dict[str, tuple[str, Action]]:
    """Every user action with the permission flag that pauses it."""
    client = env.client
    sol, usdc = env.mint("SOL"), env.mint("USDC")
    market = trade.Market.long(env.pool, sol)

    async def add_liquidity() -> tuple[list[Instruction], list[Keypair]]:
        ix = await lp.add_liquidity_ix(
            client,
            t.provider.pubkey(),
            env.pool,
            usdc,
            USDC,
            funding_account=t.provider_usdc,
            lp_token_account=t.provider_lp,
        )
        return [ix], [t.provider]

    async def remove_liquidity() -> tuple[list[Instruction], list[Keypair]]:
        ix = await lp.remove_liquidity_ix(
            client,
            t.provider.pubkey(),
            env.pool,
            usdc,
            USD,
            receiving_account=t.provider_usdc,
            lp_token_account=t.provider_lp,
        )
        return [ix], [t.provider]

    async def open_position() -> tuple[list[Instruction], list[Keypair]]:
        ix = open_position_ix(
            client,
            t.newcomer.pubkey(),
            market,
            collateral_amount=SOL // 10,
            size_usd=20 * USD,
            funding_account=t.newcomer_sol,
        )
        return [ix], [t.newcomer]

    async def close_position() -> tuple[list[Instruction], list[Keypair]]:
        return [
            close_position_ix(client, t.trader.pubkey(), market, receiving_account=t.trader_sol)
        ], [t.trader]

    async def add_collateral() -> tuple[list[Instruction], list[Keypair]]:
        return [
            add_collateral_ix(
                client, t.trader.pubkey(), market, SOL // 100, funding_account=t.trader_sol
            )
        ], [t.trader]

    async def remove_collateral() -> tuple[list[Instruction], list[Keypair]]:
        return [
            remove_collateral_ix(
                client, t.trader.pubkey(), market, 10 * USD, receiving_account=t.trader_sol
            )
        ], [t.trader]

    async def swap() -> tuple[list[Instruction], list[Keypair]]:
        ix = swap_ix(
            client,
            t.provider.pubkey(),
            env.pool,
            usdc,
            sol,
            10 * USDC,
            funding_account=t.provider_usdc,
            receiving_account=t.provider_sol,
        )
        return [ix], [t.provider]

    async def liquidate() -> tuple[list[Instruction], list[Keypair]]:
        ix = liquidate_ix(
            client,
            t.liquidator.pubkey(),
            market,
            t.gambler.pubkey(),
            receiving_account=t.liquidator_sol,
            owner_receiving_account=t.gambler_sol,
        )
        return [ix], [t.liquidator]

    return {
        "add_liquidity": ("allow_add_liquidity", add_liquidity),
        "remove_liquidity": ("allow_remove_liquidity", remove_liquidity),
        "open_position": ("allow_open_position", open_position),
        "close_position": ("allow_close_position", close_position),
        "add_collateral": ("allow_collateral_change", add_collateral),
        "remove_collateral": ("allow_collateral_change", remove_collateral),
        "swap": ("allow_swap", swap),
        "liquidate": ("allow_liquidation", liquidate),
    }


async def test_every_action_works_while_nothing_is_paused(env: PoolEnv, trading: Trading) -> None:
    for name, (_, build) in actions(env, trading).items():
        ixs, signers = await build()
        assert await simulate_error(env.client, ixs, signers) is None, name


@pytest.mark.parametrize("flag", list(all_permissions(True)))
async def test_pause_flag_stops_only_its_action(env: PoolEnv, trading: Trading, flag: str) -> None:
    client = env.client
    await client.set_permissions(all_permissions(True) | {flag: False}, env.admin, env.approvers)
    try:
        assert not getattr((await perpool_config(env)).permissions, flag)
        paused = 0
        for name, (action_flag, build) in actions(env, trading).items():
            ixs, signers = await build()
            if action_flag == flag:
                paused += 1
                await assert_rejected(
                    client, ixs, signers, error="ActionPaused", watch=trading.watched()
                )
            else:
                assert await simulate_error(client, ixs, signers) is None, (
                    f"{name} failed while only {flag} is paused"
                )
        assert paused >= 1
    finally:
        await client.set_permissions(all_permissions(True), env.admin, env.approvers)


async def test_liquidation_after_unpausing(env: PoolEnv, trading: Trading) -> None:
    client = env.client
    market = trade.Market.long(env.pool, env.mint("SOL"))
    position = trade.position_key(client, market, trading.gambler.pubkey())
    before = await env.balance(trading.liquidator_sol)
    ix = liquidate_ix(
        client,
        trading.liquidator.pubkey(),
        market,
        trading.gambler.pubkey(),
        receiving_account=trading.liquidator_sol,
        owner_receiving_account=trading.gambler_sol,
    )
    await client.send([ix], [trading.liquidator])
    assert (await client.connection.get_account_info(position, Confirmed)).value is None
    assert await env.balance(trading.liquidator_sol) >= before


# ---- oracle authority -------------------------------------------------------------------------


async def test_set_oracle_authority_hands_over_price_posting(env: PoolEnv) -> None:
    client = env.client
    keeper = await env.new_wallet()
    await client.set_oracle_authority(keeper.pubkey(), env.admin, env.approvers)
    try:
        now = await env.now()
        old = client.set_price_ix(
            env.pool,
            env.mint("USDC"),
            env.admin.pubkey(),
            price=USD,
            expo=-6,
            conf=0,
            ema=USD,
            publish_time=now,
        )
        await assert_rejected(client, [old], error="NotOracleAuthority")
        await env.advance(1)
        new_time = await env.now()
        await client.set_price(
            env.pool,
            env.mint("USDC"),
            keeper,
            price=1_000_100,
            expo=-6,
            conf=0,
            ema=1_000_100,
            publish_time=new_time,
        )
        oracle = await client.fetch(
            "CustomOracle", client.custody_keys(env.pool, env.mint("USDC")).oracle
        )
        assert (oracle.price, oracle.publish_time) == (1_000_100, new_time)
        env.last_publish["USDC"] = new_time
    finally:
        await client.set_oracle_authority(env.admin.pubkey(), env.admin, env.approvers)
    await env.set_price("USDC", USD)


# ---- protocol fees ----------------------------------------------------------------------------


async def test_withdraw_protocol_fees(env: PoolEnv) -> None:
    client = env.client
    usdc = env.mint("USDC")
    keys = client.custody_keys(env.pool, usdc)
    await env.configure("USDC", **(BASE | {"swap_bps": 100, "protocol_share_bps": 5_000}))
    try:
        depositor = await env.new_wallet()
        funding = await env.fund(depositor.pubkey(), "USDC", 2_000 * USDC)
        lp_account = await env.lp_account(depositor.pubkey())
        await lp.add_liquidity(
            client,
            depositor,
            env.pool,
            usdc,
            2_000 * USDC,
            funding_account=funding,
            lp_token_account=lp_account,
        )
        sol_in = await env.fund(depositor.pubkey(), "SOL", 10 * 10**9)
        before = (await env.custody("USDC")).assets.protocol_fees
        quote = await views.swap_amount_and_fees(
            client, env.pool, env.mint("SOL"), usdc, 10 * 10**9
        )
        assert quote.fee_amount > 0
        await trade.swap(
            client,
            depositor,
            env.pool,
            env.mint("SOL"),
            usdc,
            10 * 10**9,
            funding_account=sol_in,
            receiving_account=funding,
        )
        fees = (await env.custody("USDC")).assets.protocol_fees
        # Half of the 1% swap fee (taken in the dispensed USDC) goes to the protocol.
        assert fees - before == quote.fee_amount * 5_000 // BPS

        treasury_owner = Keypair().pubkey()
        treasury = await env.token_account(treasury_owner, "USDC")
        watch = [treasury, keys.token_account]

        async def withdraw_ix(amount: int, receiving: Pubkey) -> Instruction:
            ix = client.withdraw_protocol_fees_ix(
                env.pool, usdc, amount, receiving, env.admin.pubkey()
            )
            await client.approve(
                env.cosigners[0], hash_of("withdraw_protocol_fees", ix, [keys.custody, receiving])
            )
            return ix

        await assert_rejected(
            client,
            [await withdraw_ix(fees + 1, treasury)],
            error="InsufficientProtocolFees",
            watch=watch,
        )
        await assert_rejected(
            client, [await withdraw_ix(0, treasury)], error="ZeroAmount", watch=watch
        )
        sol_account = await env.token_account(treasury_owner, "SOL")
        wrong_mint = await withdraw_ix(fees, sol_account)
        await assert_rejected(
            client, [wrong_mint], error="InvalidTokenAccount", watch=[*watch, sol_account]
        )
        # An approval names the receiving account: sending the fees elsewhere is not approved.
        approved = await withdraw_ix(fees, treasury)
        thief = await env.token_account(env.admin.pubkey(), "USDC")
        stolen = client.withdraw_protocol_fees_ix(env.pool, usdc, fees, thief, env.admin.pubkey())
        await assert_rejected(client, [stolen], error="NotEnoughApprovals", watch=[*watch, thief])

        vault_before = await env.balance(keys.token_account)
        await client.send([approved])
        assert await env.balance(treasury) == fees
        assert await env.balance(keys.token_account) == vault_before - fees
        assert (await env.custody("USDC")).assets.protocol_fees == 0
    finally:
        await env.configure("USDC", **BASE)


# ---- removing custodies and pools -------------------------------------------------------------


async def test_remove_custody_and_pool(env: PoolEnv) -> None:
    client = env.client
    aux = "aux"
    approvers = env.approvers
    await client.add_pool(aux, env.admin, approvers)
    extra = await AsyncToken.create_mint(
        client.connection, env.admin, env.admin.pubkey(), 6, TOKEN_PROGRAM_ID
    )
    sol = env.mint("SOL")
    for mint, stable in ((sol, False), (extra.pubkey, True)):
        oracle = client.custody_keys(aux, mint).oracle
        config = custody_config(oracle, client_types=client.program.type, **BASE)
        await client.add_custody(aux, mint, stable, config, env.admin, approvers)
        price, expo = (10_000, -2) if mint == sol else (USD, -6)
        await client.set_price(
            aux,
            mint,
            env.admin,
            price=price,
            expo=expo,
            conf=0,
            ema=price,
            publish_time=await env.now(),
        )
    assert list((await client.fetch("Pool", pda.pool(aux))).custodies) == [
        client.custody_keys(aux, sol).custody,
        client.custody_keys(aux, extra.pubkey).custody,
    ]

    # An LP deposit makes the SOL custody non-empty.
    lper = await env.new_wallet()
    lper_sol = await env.fund(lper.pubkey(), "SOL", SOL)
    lp_mint = AsyncToken(
        client.connection, pda.lp_token_mint(pda.pool(aux)), TOKEN_PROGRAM_ID, env.admin
    )
    lper_lp = await lp_mint.create_associated_token_account(lper.pubkey())
    await lp.add_liquidity(
        client, lper, aux, sol, SOL, funding_account=lper_sol, lp_token_account=lper_lp
    )
    sink_sol = await env.token_account(env.admin.pubkey(), "SOL")

    async def remove_custody_ix(mint: Pubkey, receiving: Pubkey) -> Instruction:
        ix = client.remove_custody_ix(aux, mint, receiving, env.admin.pubkey())
        await client.approve(
            env.cosigners[0],
            hash_of("remove_custody", ix, [client.custody_keys(aux, mint).custody, receiving]),
        )
        return ix

    await assert_rejected(
        client, [await remove_custody_ix(sol, sink_sol)], error="CustodyNotEmpty", watch=[sink_sol]
    )

    async def remove_pool_ix(name: str) -> Instruction:
        ix = client.remove_pool_ix(name, env.admin.pubkey())
        await client.approve(env.cosigners[0], hash_of("remove_pool", ix, [pda.pool(name)]))
        return ix

    await assert_rejected(client, [await remove_pool_ix(aux)], error="PoolNotEmpty")
    await assert_rejected(client, [await remove_pool_ix(env.pool)], error="PoolNotEmpty")

    # The empty custody goes, and tokens sent straight to its vault go to the approved account.
    extra_keys = client.custody_keys(aux, extra.pubkey)
    sig = (await extra.mint_to(extra_keys.token_account, env.admin, 7 * USDC)).value
    await client.connection.confirm_transaction(sig, Confirmed, sleep_seconds=0.05)
    treasury = await extra.create_associated_token_account(Keypair().pubkey())
    approved = await remove_custody_ix(extra.pubkey, treasury)
    thief = await extra.create_associated_token_account(env.admin.pubkey())
    hijacked = client.remove_custody_ix(aux, extra.pubkey, thief, env.admin.pubkey())
    await assert_rejected(client, [hijacked], error="NotEnoughApprovals", watch=[thief, treasury])
    lamports_before = (await client.connection.get_balance(env.admin.pubkey(), Confirmed)).value
    await client.send([approved])
    assert (
        int((await client.connection.get_token_account_balance(treasury, Confirmed)).value.amount)
        == 7 * USDC
    )
    for closed in (extra_keys.custody, extra_keys.token_account, extra_keys.oracle):
        assert (await client.connection.get_account_info(closed, Confirmed)).value is None
    assert (
        await client.connection.get_balance(env.admin.pubkey(), Confirmed)
    ).value > lamports_before  # rent back
    assert list((await client.fetch("Pool", pda.pool(aux))).custodies) == [
        client.custody_keys(aux, sol).custody
    ]

    # Emptied by the LP, the SOL custody and then the pool can go.
    lp_balance = int(
        (await client.connection.get_token_account_balance(lper_lp, Confirmed)).value.amount
    )
    await lp.remove_liquidity(
        client, lper, aux, sol, lp_balance, receiving_account=lper_sol, lp_token_account=lper_lp
    )
    assert (await client.fetch("Custody", client.custody_keys(aux, sol).custody)).assets.owned == 0
    await client.remove_custody(aux, sol, sink_sol, env.admin, approvers)
    assert list((await client.fetch("Pool", pda.pool(aux))).custodies) == []
    before = await chain_state(client)
    await client.send([await remove_pool_ix(aux)])
    assert (await client.connection.get_account_info(pda.pool(aux), Confirmed)).value is None
    assert list((await perpool_config(env)).pools) == [pda.pool(env.pool)]
    assert str(pda.pool(aux)) in before


async def test_remove_custody_refuses_a_custody_with_positions_or_liquidity(
    env: PoolEnv, trading: Trading
) -> None:
    sink = await env.token_account(env.admin.pubkey(), "SOL")
    ix = env.client.remove_custody_ix(env.pool, env.mint("SOL"), sink, env.admin.pubkey())
    custody = env.client.custody_keys(env.pool, env.mint("SOL")).custody
    await env.client.approve(env.cosigners[0], hash_of("remove_custody", ix, [custody, sink]))
    await assert_rejected(env.client, [ix], error="CustodyNotEmpty", watch=[sink])


async def test_custody_and_pool_limits(env: PoolEnv) -> None:
    """8 custodies per pool and 32 pools per program; one more is TooManyCustodies /
    TooManyPools."""
    client = env.client
    full = "full"
    await client.add_pool(full, env.admin, env.approvers)
    for i in range(9):
        mint = (
            await AsyncToken.create_mint(
                client.connection, env.admin, env.admin.pubkey(), 6, TOKEN_PROGRAM_ID
            )
        ).pubkey
        config = custody_config(
            client.custody_keys(full, mint).oracle, client_types=client.program.type, **BASE
        )
        if i < 8:
            await client.add_custody(full, mint, True, config, env.admin, env.approvers)
            continue
        ix = client.add_custody_ix(full, mint, True, config, env.admin.pubkey())
        await client.approve(env.cosigners[0], hash_of("add_custody", ix, [pda.pool(full), mint]))
        await assert_rejected(client, [ix], error="TooManyCustodies")
    assert len((await client.fetch("Pool", pda.pool(full))).custodies) == 8

    pools = len((await perpool_config(env)).pools)
    for i in range(pools, MAX_POOLS + 1):
        name = f"pool-{i}"
        if i < MAX_POOLS:
            await client.add_pool(name, env.admin, env.approvers)
            continue
        ix = client.add_pool_ix(name, env.admin.pubkey())
        await client.approve(env.cosigners[0], hash_of("add_pool", ix, [pda.pool(name)]))
        await assert_rejected(client, [ix], error="TooManyPools")
    assert len((await perpool_config(env)).pools) == MAX_POOLS
