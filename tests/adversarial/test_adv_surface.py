"""The program's surface: class 8 (instruction introspection), class 29 (no test-only
instruction) and class 30 (size limits).

8: the program never reads the Instructions sysvar or verifies signatures through the ed25519
program; prices come only from the oracle accounts, so an ed25519 "signed price" next to a trade
changes nothing.
29: the instruction set is exactly the documented one; instructions a test build might carry
(clock, minting, balance or price overrides) do not exist, and malformed instruction data is
refused by name.
30: with the maximum number of custodies (8) the heaviest instructions (LP actions and the AUM
refresh over every custody and oracle, a liquidation bundled with a price update) fit in one
legacy transaction (1232 bytes) and the account-lock limit (64), and land.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from adversary import (
    SOL,
    USD,
    USDC,
    Attack,
    World,
    account_names,
    honest_instructions,
    instruction_names,
    snake,
)
from pool_env import TokenSpec
from solana.rpc.commitment import Confirmed
from solders.instruction import AccountMeta, Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from trade_support import add_pool, new_trader, position, set_prices

from perpool import lp, pda, trade, views
from perpool.custody_config import custody_config
from perpool.program import PROGRAM_ID

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(29)]

PROGRAM_SRC = Path(__file__).resolve().parents[2] / "localnet" / "programs" / "perpool" / "src"
ED25519_PROGRAM = "Ed25519SigVerify111111111111111111111111111"
PACKET_DATA_SIZE = 1232
MAX_TX_ACCOUNT_LOCKS = 64

EXPECTED_INSTRUCTIONS = {
    # admin
    "init",
    "approve_admin_instruction",
    "add_pool",
    "add_custody",
    "set_custody_config",
    "set_permissions",
    "set_oracle_authority",
    "withdraw_protocol_fees",
    "remove_custody",
    "remove_pool",
    "set_custom_oracle_price",
    # users
    "add_liquidity",
    "remove_liquidity",
    "open_position",
    "add_collateral",
    "remove_collateral",
    "close_position",
    "swap",
    # permissionless cranks
    "accrue_borrow",
    "update_funding",
    "update_pool_aum",
    "liquidate",
    # read-only views (simulated)
    "get_entry_price_and_fee",
    "get_exit_price_and_fee",
    "get_pnl",
    "get_liquidation_price",
    "get_liquidation_state",
    "get_oracle_price",
    "get_lp_token_price",
    "get_assets_under_management",
    "get_add_liquidity_amount_and_fee",
    "get_remove_liquidity_amount_and_fee",
    "get_swap_amount_and_fees",
}

TEST_ONLY_NAMES = (
    "set_clock",
    "set_time",
    "warp_clock",
    "advance_clock",
    "set_price",
    "set_test_price",
    "force_price",
    "mint_tokens",
    "mint_lp_tokens",
    "airdrop",
    "faucet",
    "set_balance",
    "set_position",
    "force_liquidate",
    "force_close",
    "reset_pool",
    "reset_custody",
    "debug",
    "test_init",
    "set_aum",
    "set_borrow_index",
    "set_funding_index",
    "drain_custody",
    "close_custody_token_account",
)


def sighash(name: str) -> bytes:
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


def program_sources() -> dict[str, str]:
    return {str(p.relative_to(PROGRAM_SRC)): p.read_text() for p in PROGRAM_SRC.rglob("*.rs")}


# --------------------------------------------------------------------------------------------
# Class 29
# --------------------------------------------------------------------------------------------


async def test_instruction_set_is_exactly_the_documented_one(world: World, attack: Attack) -> None:
    names = instruction_names(world.client)
    attack.static(
        "IDL instruction set equals the documented set",
        names == EXPECTED_INSTRUCTIONS,
        f"unexpected {sorted(names - EXPECTED_INSTRUCTIONS)}, missing "
        f"{sorted(EXPECTED_INSTRUCTIONS - names)}",
    )
    handlers = set(re.findall(r"pub fn (\w+)", program_sources()["lib.rs"]))
    attack.static(
        "lib.rs exposes no instruction outside the IDL",
        handlers <= EXPECTED_INSTRUCTIONS,
        f"{sorted(handlers - EXPECTED_INSTRUCTIONS)}",
    )
    # Conditional compilation only ever removes unit-test modules; no feature flag adds code.
    gates = [
        (f, m.group(0))
        for f, text in program_sources().items()
        for m in re.finditer(r"#\[cfg[^\]]*\]\s*\S+ ?\S*", text)
    ]
    odd = [(f, g) for f, g in gates if not re.fullmatch(r"#\[cfg\(test\)\]\s*mod \w+;?", g)]
    attack.static(f"all {len(gates)} cfg attributes gate unit-test modules", not odd, f"{odd}")


async def test_test_only_instructions_do_not_exist(world: World, attack: Attack) -> None:
    metas = [
        AccountMeta(world.attacker.key, is_signer=True, is_writable=True),
        AccountMeta(pda.perpool(), is_signer=False, is_writable=True),
        AccountMeta(pda.pool(world.env.pool), is_signer=False, is_writable=True),
    ]
    for name in TEST_ONLY_NAMES:
        ix = Instruction(PROGRAM_ID, sighash(name) + bytes(16), metas)
        await attack.rejected(
            f"instruction {name!r}",
            [ix],
            [world.attacker.wallet],
            error="InstructionFallbackNotFound",
        )


async def test_malformed_instruction_data(world: World, attack: Attack) -> None:
    honest = await honest_instructions(world)
    for data in (b"", b"\x01", bytes(7)):
        ix = Instruction(PROGRAM_ID, data, honest[0].ix.accounts)
        await attack.rejected(
            f"instruction data of {len(data)} bytes",
            [ix],
            honest[0].signers,
            # Anchor 0.31 reads a short discriminator as an unknown instruction.
            error="InstructionFallbackNotFound",
        )
    for case in honest:
        if len(case.ix.data) <= 8:
            continue
        truncated = Instruction(PROGRAM_ID, bytes(case.ix.data[:-1]), case.ix.accounts)
        await attack.rejected(
            f"{case.label} with its arguments cut short",
            [truncated],
            case.signers,
            error="InstructionDidNotDeserialize",
        )


# --------------------------------------------------------------------------------------------
# Class 8
# --------------------------------------------------------------------------------------------


@pytest.mark.attack_class(8)
async def test_no_instruction_introspection_in_the_program(attack: Attack) -> None:
    sources = program_sources()
    for pattern in (
        r"sysvar::instructions",
        r"load_instruction_at",
        r"load_current_index",
        r"get_instruction_relative",
        r"ed25519",
        r"secp256k1",
        r"Instructions\b",
    ):
        hits = [f for f, text in sources.items() if re.search(pattern, text)]
        attack.static(f"no {pattern} in the program", not hits, f"found in {hits}")


def ed25519_claim(signer_seed: bytes, message: bytes) -> Instruction:
    """An ed25519 program instruction verifying ``message`` signed by a throwaway key (the
    layout of the native program: one signature, offsets into this instruction's data)."""
    from solders.keypair import Keypair

    key = Keypair.from_seed(signer_seed.ljust(32, b"\0")[:32])
    signature = bytes(key.sign_message(message))
    header = 2 + 14
    pubkey_offset = header
    sig_offset = pubkey_offset + 32
    msg_offset = sig_offset + 64

    def u16(n: int) -> bytes:
        return n.to_bytes(2, "little")

    offsets = (
        u16(sig_offset)
        + u16(0xFFFF)
        + u16(pubkey_offset)
        + u16(0xFFFF)
        + u16(msg_offset)
        + u16(len(message))
        + u16(0xFFFF)
    )
    data = bytes([1, 0]) + offsets + bytes(key.pubkey()) + signature + message
    return Instruction(Pubkey.from_string(ED25519_PROGRAM), data, [])


@pytest.mark.attack_class(8)
async def test_signed_price_claims_next_to_a_trade_change_nothing(
    world: World, attack: Attack
) -> None:
    """A verified ed25519 "price" instruction before a trade: the program never looks at it,
    so the trade executes at the oracle's price exactly as without it."""
    env = world.env
    await set_prices(env)
    for i, (key, collateral, amount) in enumerate(
        (
            ("short_sol", "USDC", 100 * USDC),
            ("long_sol", "SOL", SOL),
        )
    ):
        market = world.markets[key]
        for claim in (b"SOL/USD price 1", b"SOL/USD price 1000000"):
            trader = await new_trader(env, **{collateral: 10 * amount})
            ix = trade.open_position_ix(
                world.client,
                trader.key,
                market,
                collateral_amount=amount,
                size_usd=500 * USD,
                funding_account=trader.accounts[collateral],
            )
            quote = await views.entry_price_and_fee(world.client, market, amount, 500 * USD)
            await world.client.send([ed25519_claim(bytes([i]), claim), ix], [trader.wallet])
            opened = await position(env, market, trader.key)
            async with attack.holds(f"{key}: entry at the oracle price despite {claim!r}"):
                assert opened.price == quote.entry_price, (opened.price, quote.entry_price)


@pytest.mark.attack_class(8)
@pytest.mark.parametrize("claim_first", [True, False], ids=["claim before", "claim after"])
async def test_signed_price_claims_next_to_swaps_and_lp_actions_change_nothing(
    world: World, attack: Attack, claim_first: bool
) -> None:
    """A verified ed25519 claim of an absurd price, before or after a swap, a deposit or a
    withdrawal in the same transaction: each moves what the view quoted a moment before (to a
    basis point: borrow fees accrue between the view and the slot the transaction lands in)."""
    env, client = world.env, world.client
    await set_prices(env)
    trader = await new_trader(env, SOL=20 * SOL, USDC=20_000 * USDC)
    lp_account = await env.lp_account(trader.key)
    sol, usdc = env.mint("SOL"), env.mint("USDC")
    where = "after" if claim_first else "before"

    async def lands_as_quoted(label: str, ix: Instruction, quoted: int, account: Pubkey) -> None:
        claim = ed25519_claim(label.encode(), f"{label}: price 1".encode())
        before = await env.balance(account)
        await client.send([claim, ix] if claim_first else [ix, claim], [trader.wallet])
        moved = await env.balance(account) - before
        async with attack.holds(f"{label} {where} a signed price claim moves the quoted amount"):
            assert abs(moved - quoted) <= quoted // 10_000, (moved, quoted)

    for mint_in, mint_out, amount, account in (
        (sol, usdc, SOL, trader.accounts["USDC"]),
        (usdc, sol, 100 * USDC, trader.accounts["SOL"]),
    ):
        quote = await views.swap_amount_and_fees(client, env.pool, mint_in, mint_out, amount)
        symbol_in = "SOL" if mint_in == sol else "USDC"
        symbol_out = "USDC" if mint_in == sol else "SOL"
        ix = trade.swap_ix(
            client,
            trader.key,
            env.pool,
            mint_in,
            mint_out,
            amount,
            funding_account=trader.accounts[symbol_in],
            receiving_account=trader.accounts[symbol_out],
        )
        await lands_as_quoted(f"swap {symbol_in} to {symbol_out}", ix, quote.amount_out, account)
    for symbol, amount in (("SOL", 2 * SOL), ("USDC", 500 * USDC)):
        quote = await views.add_liquidity_amount_and_fee(client, env.pool, env.mint(symbol), amount)
        ix = await lp.add_liquidity_ix(
            client,
            trader.key,
            env.pool,
            env.mint(symbol),
            amount,
            funding_account=trader.accounts[symbol],
            lp_token_account=lp_account,
        )
        await lands_as_quoted(f"{symbol} deposit", ix, quote.lp_amount, lp_account)
    lp_amount = await env.balance(lp_account) // 2
    quote = await views.remove_liquidity_amount_and_fee(client, env.pool, usdc, lp_amount)
    ix = await lp.remove_liquidity_ix(
        client,
        trader.key,
        env.pool,
        usdc,
        lp_amount,
        receiving_account=trader.accounts["USDC"],
        lp_token_account=lp_account,
    )
    await lands_as_quoted("USDC withdrawal", ix, quote.amount_out, trader.accounts["USDC"])


# --------------------------------------------------------------------------------------------
# Class 30
# --------------------------------------------------------------------------------------------

EIGHT = tuple(
    TokenSpec(f"T{i}", 6 + i % 4, i >= 6, 1_000_000 if i >= 6 else (i + 1) * 10_000, -6 + i % 3)
    for i in range(8)
)


@pytest.mark.attack_class(30)
async def test_heaviest_instructions_fit_with_eight_custodies(world: World, attack: Attack) -> None:
    env = world.env
    pool = await add_pool(env, "eight", EIGHT)
    client = pool.client
    provider = await new_trader(pool, **{t.symbol: 10**6 * 10**t.decimals for t in EIGHT})
    lp_account = await pool.lp_account(provider.key)
    heavy: list[tuple[str, list[Instruction]]] = []
    for spec in EIGHT:
        deposit = await lp.add_liquidity_ix(
            client,
            provider.key,
            pool.pool,
            pool.mint(spec.symbol),
            10**5 * 10**spec.decimals,
            funding_account=provider.accounts[spec.symbol],
            lp_token_account=lp_account,
        )
        heavy.append((f"add_liquidity {spec.symbol} over 8 custodies", [deposit]))
    withdraw = await lp.remove_liquidity_ix(
        client,
        provider.key,
        pool.pool,
        pool.mint("T0"),
        10 * USD,
        receiving_account=provider.accounts["T0"],
        lp_token_account=lp_account,
    )
    heavy.append(("remove_liquidity over 8 custodies", [withdraw]))
    aum = client.ix(
        "update_pool_aum",
        accounts={"pool": pda.pool(pool.pool)},
        remaining=await client.pool_remaining_accounts(pool.pool),
    )
    heavy.append(("update_pool_aum over 8 custodies", [aum]))
    for label, ixs in heavy:
        message = Message(ixs, provider.key)
        blockhash = (await client.connection.get_latest_blockhash(Confirmed)).value.blockhash
        tx = Transaction([provider.wallet], message, blockhash)
        size = len(bytes(tx))
        locks = len(message.account_keys)
        signature = (await client.connection.send_raw_transaction(bytes(tx))).value
        await client.connection.confirm_transaction(signature, Confirmed, sleep_seconds=0.05)
        status = (await client.connection.get_signature_statuses([signature])).value[0]
        async with attack.holds(f"{label}: {size} bytes, {locks} accounts, lands"):
            assert size <= PACKET_DATA_SIZE, size
            assert locks <= MAX_TX_ACCOUNT_LOCKS, locks
            assert status is not None
            assert status.err is None, status.err

    # Trades bundled with fresh prices for both of their custodies, on every market of the
    # eight-custody pool: the shape of a keeper or a trader that refreshes prices in-line.
    trader = await new_trader(pool, **{t.symbol: 10**4 * 10**t.decimals for t in EIGHT})
    # Simulated only, so every bundle may post at the same (current) second.
    now = await pool.now()
    assert all(now > t for t in pool.last_publish.values())
    for spec in EIGHT[:6]:
        for side, collateral in (("long", spec), ("short", EIGHT[6])):
            market = (
                trade.Market.long(pool.pool, pool.mint(spec.symbol))
                if side == "long"
                else trade.Market.short(pool.pool, pool.mint(spec.symbol), pool.mint("T6"))
            )
            prices = []
            for priced in {spec.symbol: spec, collateral.symbol: collateral}.values():
                prices.append(
                    client.set_price_ix(
                        pool.pool,
                        pool.mint(priced.symbol),
                        env.admin.pubkey(),
                        price=priced.price,
                        expo=priced.expo,
                        conf=0,
                        ema=priced.price,
                        publish_time=now,
                    )
                )
            amount = 10 * 10**collateral.decimals
            value = (
                amount * collateral.price * 10**6 // 10 ** (collateral.decimals - collateral.expo)
            )
            opened = trade.open_position_ix(
                client,
                trader.key,
                market,
                collateral_amount=amount,
                size_usd=max(2 * value, USD),
                funding_account=trader.accounts[collateral.symbol],
            )
            message = Message([*prices, opened], env.admin.pubkey())
            blockhash = (await client.connection.get_latest_blockhash(Confirmed)).value.blockhash
            tx = Transaction([env.admin, trader.wallet], message, blockhash)
            size = len(bytes(tx))
            sim = (await client.connection.simulate_transaction(tx)).value
            async with attack.holds(
                f"{side} {spec.symbol} with {len(prices)} price posts: {size} bytes, lands"
            ):
                assert size <= PACKET_DATA_SIZE, size
                assert len(message.account_keys) <= MAX_TX_ACCOUNT_LOCKS
                assert sim.err is None, (sim.err, sim.logs)

    # A ninth custody is refused.
    from spl.token.async_client import AsyncToken
    from spl.token.constants import TOKEN_PROGRAM_ID

    mint = await AsyncToken.create_mint(
        client.connection, env.admin, env.admin.pubkey(), 6, TOKEN_PROGRAM_ID
    )
    config = custody_config(
        client.custody_keys(pool.pool, mint.pubkey).oracle, client_types=client.program.type
    )
    ix = client.add_custody_ix(pool.pool, mint.pubkey, False, config, env.admin.pubkey())
    await attack.rejected(
        "a ninth custody",
        [ix],
        [env.admin],
        error="TooManyCustodies",
        watch=[pda.custody(pda.pool(pool.pool), mint.pubkey)],
    )
    # The largest account list of any instruction, for the record.
    widest = max(
        len(account_names(client, snake(ix.name))) for ix in client.program.idl.instructions
    )
    attack.static(
        f"widest instruction has {widest} fixed accounts (+16 remaining at most)",
        widest + 16 <= MAX_TX_ACCOUNT_LOCKS,
    )
