"""The console scripts, run as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from anchorpy.coder.accounts import AccountsCoder
from conftest import TEST_SLOT_MS
from solana.rpc.api import Client
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from perpool import __version__, pda
from perpool.amounts import to_base_units
from perpool.localnet import LocalnetProcess, find_validator
from perpool.program import load_idl
from perpool.spec import default_spec_path, load_spec

BIN = Path(sys.executable).parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_version() -> None:
    result = run("perpool", "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"perpool {__version__}"


def test_keeper_refuses_a_missing_config_file() -> None:
    result = run("perpool-keeper", "--config", "/nonexistent/keeper.toml")
    assert result.returncode == 2
    assert "config file not found" in result.stderr


def test_time_and_slot_commands(start_localnet: Callable[..., LocalnetProcess]) -> None:
    net = start_localnet()
    before = json.loads(run("perpool", "localnet", "clock", "--json", "--url", net.url).stdout)

    result = run("perpool", "--url", net.url, "localnet", "time", "advance", "3600", "--json")
    assert result.returncode == 0, result.stderr
    advanced = json.loads(result.stdout)
    assert advanced["unixTimestamp"] >= before["unixTimestamp"] + 3600

    result = run("perpool", "localnet", "slots", "advance", "25", "--json", "--url", net.url)
    assert result.returncode == 0, result.stderr
    warped = json.loads(result.stdout)
    assert warped["slot"] >= before["slot"] + 25

    result = run("perpool", "localnet", "time", "set", "1900000000", "--url", net.url)
    assert result.returncode == 0, result.stderr
    assert "unix_timestamp 19000000" in result.stdout


def test_unreachable_url_is_a_clean_error() -> None:
    result = run("perpool", "localnet", "time", "advance", "1", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach http://127.0.0.1:9")
    assert "Traceback" not in result.stderr


def test_negative_seconds_rejected() -> None:
    result = run("perpool", "localnet", "time", "advance", "--", "-5")
    assert result.returncode == 2
    assert "must not be negative" in result.stderr


def test_localnet_wrapper_execs_the_binary() -> None:
    try:
        binary = find_validator()
    except Exception as exc:  # pragma: no cover - the session fixture reports this better
        pytest.fail(str(exc))
    # PERPOOL_LOCALNET_BIN skips the staleness check, so no cargo build runs here.
    result = run("perpool-localnet", "--help", env={"PERPOOL_LOCALNET_BIN": str(binary)})
    assert result.returncode == 0, result.stderr
    for flag in ("--port", "--slot-ms", "--ledger", "--reset", "--account", "--quiet"):
        assert flag in result.stdout


# ---- the trading CLI end to end, against one validator for this module ----------------------

LAMPORTS_PER_SOL = 1_000_000_000
SPEC = load_spec(default_spec_path())
_ENV_OVERRIDES = ("PERPOOL_RPC_URL", "PERPOOL_KEYPAIR", "SOLANA_CONFIG", "PERPOOL_POOL_CONFIG")


@dataclass
class CliEnv:
    url: str
    home: Path
    admin: Keypair
    admin_path: Path
    trader: Keypair
    trader_path: Path
    setup_output: dict[str, Any]
    chain: Client

    def run(self, *args: str, keypair: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``perpool ARGS``; URL and admin keypair come from the Solana CLI config in HOME."""
        extra = ["--keypair", str(keypair)] if keypair else []
        env = {k: v for k, v in os.environ.items() if k not in _ENV_OVERRIDES}
        return subprocess.run(
            [str(BIN / "perpool"), *args, *extra],
            capture_output=True,
            text=True,
            timeout=120,
            env=env | {"HOME": str(self.home)},
            check=False,
        )

    def json(self, *args: str, keypair: Path | None = None) -> dict[str, Any]:
        """Runs with --json; the command must succeed and print exactly one JSON object."""
        result = self.run(*args, "--json", keypair=keypair)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return one_object(result.stdout)

    def fails(self, *args: str, keypair: Path | None = None) -> tuple[int, dict[str, Any]]:
        result = self.run(*args, "--json", keypair=keypair)
        assert result.returncode != 0, (args, result.stdout)
        return result.returncode, one_object(result.stdout)["error"]

    def trade(self, *args: str) -> dict[str, Any]:
        return self.json(*args, keypair=self.trader_path)

    def mint(self, symbol: str) -> Pubkey:
        custody = SPEC.by_symbol(symbol)
        assert custody is not None
        return custody.mint

    def balance(self, owner: Pubkey, symbol: str) -> int:
        """Base units in the owner's associated token account (0 if it does not exist)."""
        mint = self.mint(symbol) if symbol != "LP" else pda.lp_token_mint(pda.pool("main"))
        account = get_associated_token_address(owner, mint)
        if self.chain.get_account_info(account).value is None:
            return 0
        return int(self.chain.get_token_account_balance(account).value.amount)

    def lamports(self, owner: Pubkey) -> int:
        return self.chain.get_balance(owner).value

    def account(self, address: Pubkey) -> Any:
        info = self.chain.get_account_info(address).value
        assert info is not None, address
        return ACCOUNTS_CODER.decode(bytes(info.data))


ACCOUNTS_CODER = AccountsCoder(load_idl())


def one_object(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    value = json.loads(lines[0])
    assert isinstance(value, dict)
    return value


def units(text: str, decimals: int) -> int:
    return to_base_units(text, decimals, allow_zero=True)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliEnv]:
    net = LocalnetProcess.start(binary=find_validator(), slot_ms=TEST_SLOT_MS)
    try:
        home = tmp_path_factory.mktemp("home")
        admin, trader = Keypair(), Keypair()
        admin_path, trader_path = home / "admin.json", home / "trader.json"
        admin_path.write_text(admin.to_json())
        trader_path.write_text(trader.to_json())
        config = home / ".config" / "solana" / "cli" / "config.yml"
        config.parent.mkdir(parents=True)
        config.write_text(f"json_rpc_url: {net.url}\nkeypair_path: {admin_path}\n")
        env = CliEnv(net.url, home, admin, admin_path, trader, trader_path, {}, Client(net.url))
        env.setup_output = env.json("setup")
        yield env
    finally:
        net.stop()


def test_setup_creates_the_spec_and_is_idempotent(cli: CliEnv) -> None:
    first = cli.setup_output
    assert first["admin"] == str(cli.admin.pubkey())
    created = {s["step"] for s in first["steps"] if s["status"] == "created"}
    for symbol in ("SOL", "ETH", "WBTC", "USDC", "USDT", "ETH2"):
        assert {f"mint {symbol}", f"custody {symbol}", f"price {symbol}"} <= created
    assert {"init", "pool"} <= created

    pool = cli.account(pda.pool("main"))
    assert pool.name == "main"
    custodies = [cli.account(key) for key in pool.custodies]
    assert [c.mint for c in custodies] == [c.mint for c in SPEC.custodies]
    for custody, spec in zip(custodies, SPEC.custodies, strict=True):
        mint = cli.chain.get_account_info(spec.mint).value
        assert mint is not None
        assert bytes(mint.data)[44] == spec.decimals
        assert custody.decimals == spec.decimals
        assert custody.is_stable == spec.stable
        assert custody.pricing.max_initial_leverage == spec.config.get("max_initial_leverage", 1e6)
        oracle = cli.account(custody.oracle.oracle_account)
        assert (oracle.price, oracle.expo) == spec.price
        assert oracle.publish_time > 0

    again = cli.json("setup")
    assert again["created"] == 0
    assert {s["status"] for s in again["steps"]} == {"exists"}
    assert len(again["steps"]) == len(first["steps"]) - 1  # no airdrop the second time


def test_account_decodes_every_program_account_type(cli: CliEnv) -> None:
    pool = cli.account(pda.pool("main"))
    sol = SPEC.by_symbol("SOL")
    assert sol is not None
    custody = pda.custody(pda.pool("main"), sol.mint)
    expected = {
        pda.perpool(): ("Perpool", "oracleAuthority", str(cli.admin.pubkey())),
        pda.multisig(): ("Multisig", "minSignatures", "1"),
        pda.pool("main"): ("Pool", "name", "main"),
        custody: ("Custody", "mint", str(sol.mint)),
        pda.custom_oracle(pda.pool("main"), sol.mint): ("CustomOracle", "price", "15000000000"),
    }
    assert pool.custodies[0] == custody
    for address, (kind, field, value) in expected.items():
        decoded = cli.json("account", str(address))
        assert decoded["type"] == kind
        assert decoded["data"][field] == value


def test_trader_flow_moves_real_balances(cli: CliEnv) -> None:
    trader = cli.trader.pubkey()
    # Faucet: test tokens and SOL for fees.
    out = cli.json("faucet", "SOL", "20", "--to", str(trader))
    assert out["solAirdropped"] == "1"
    cli.json("faucet", "USDC", "10000", "--to", str(trader))
    assert cli.balance(trader, "SOL") == 20 * LAMPORTS_PER_SOL
    assert cli.balance(trader, "USDC") == 10_000 * 10**6
    assert cli.lamports(trader) == LAMPORTS_PER_SOL

    # Liquidity: the LP tokens the CLI reports are the ones on chain.
    quote = cli.trade("lp", "quote", "deposit", "USDC", "5000")
    out = cli.trade("lp", "deposit", "USDC", "5000")
    assert out["signature"]
    assert out["lpAmount"] == quote["lpAmount"]
    assert cli.balance(trader, "LP") == units(out["lpAmount"], 6)
    assert cli.balance(trader, "USDC") == 5_000 * 10**6
    out = cli.trade("lp", "deposit", "SOL", "10", "--min-lp", "1000")
    assert cli.balance(trader, "SOL") == 10 * LAMPORTS_PER_SOL

    # Open a 3x long: exactly the collateral leaves the wallet; the account matches the output.
    quote = cli.trade("quote", "open", "SOL", "long", "--collateral", "1", "--leverage", "3")
    assert quote["leverage"] == "3"
    out = cli.trade("open", "SOL", "long", "--collateral", "1", "--leverage", "3")
    assert out["sizeUsd"] == quote["sizeUsd"]
    assert out["entryPriceUsd"] == quote["entryPriceUsd"] == "150"
    assert quote["priceImpact"] == "0"  # the localnet spec has no slippage curve
    position = cli.account(Pubkey.from_string(out["position"]))
    assert position.size_usd == units(out["sizeUsd"], 6)
    assert position.collateral_usd == units(out["collateralUsd"], 6)
    assert cli.balance(trader, "SOL") == 9 * LAMPORTS_PER_SOL
    assert cli.json("account", out["position"])["type"] == "Position"

    # --units sizes at the oracle price; --simulate sends nothing.
    sim = cli.trade("open", "SOL", "short", "--collateral", "100", "--units", "2", "--simulate")
    assert sim["simulated"] is True
    assert sim["signature"] is None
    assert sim["sizeUsd"] == "300"
    assert sim["collateralToken"] == "USDC"
    assert any("Instruction: OpenPosition" in line for line in sim["logs"])
    assert [e["name"] for e in sim["events"]] == ["PositionOpened"]
    assert cli.balance(trader, "USDC") == 5_000 * 10**6

    # The admin (from the Solana CLI config) moves the price; positions show the profit.
    cli.json("oracle", "set", "SOL", "165", "--conf", "0.01")
    listed = cli.trade("positions")["positions"]
    assert len(listed) == 1
    row = listed[0]
    assert (row["symbol"], row["side"], row["markPriceUsd"]) == ("SOL", "long", "165")
    expected_profit = position.size_usd * 15 // 150  # +10% on the size
    assert units(row["pnlUsd"], 6) == expected_profit
    assert row["health"] == "healthy"
    assert row["liquidatable"] is False
    for key in ("borrowFeeUsd", "closeFeeUsd", "leverage", "liquidationPriceUsd", "entryPriceUsd"):
        assert row[key] is not None

    # Partial then full close: the payout lands in the wallet.
    before = cli.balance(trader, "SOL")
    out = cli.trade("close", "SOL", "long", "--fraction", "0.5")
    assert out["fraction"] == "0.5"
    assert cli.balance(trader, "SOL") - before == units(out["payout"], 9)
    before = cli.balance(trader, "SOL")
    out = cli.trade("close", "SOL", "long")
    assert cli.balance(trader, "SOL") - before == units(out["payout"], 9)
    assert cli.trade("positions")["positions"] == []

    # Swap and withdraw: the reported output is what arrives.
    before = cli.balance(trader, "SOL")
    out = cli.trade("swap", "USDC", "SOL", "330")
    assert cli.balance(trader, "SOL") - before == units(out["amountOut"], 9)
    assert cli.balance(trader, "USDC") == 4_670 * 10**6
    lp_before = cli.balance(trader, "LP")
    out = cli.trade("lp", "withdraw", "USDC", "1000")
    assert cli.balance(trader, "LP") == lp_before - 1000 * 10**6
    assert cli.balance(trader, "USDC") == 4_670 * 10**6 + units(out["amountOut"], 6)

    pool = cli.json("pool")
    usdc = next(c for c in pool["custodies"] if c["symbol"] == "USDC")
    assert usdc["price"] == "1"
    assert usdc["oracleAgeSeconds"] >= 0
    assert units(pool["lpSupply"], 6) == cli.balance(trader, "LP")
    assert pool["aumUsd"] is not None
    assert pool["lpPriceUsd"] is not None


def test_collateral_changes(cli: CliEnv) -> None:
    trader = cli.trader.pubkey()
    cli.json("faucet", "USDT", "500", "--to", str(trader))
    # Shorts lock their size in the stable custody: the admin provides USDT liquidity.
    cli.json("faucet", "USDT", "2000")
    assert cli.balance(cli.admin.pubkey(), "USDT") == 2_000 * 10**6
    cli.json("lp", "deposit", "USDT", "1500")
    out = cli.trade(
        "open", "ETH", "short", "--collateral", "200", "--collateral-token", "USDT", "--size", "600"
    )
    assert out["collateralToken"] == "USDT"
    position = Pubkey.from_string(out["position"])
    cli.trade("collateral", "add", "ETH", "short", "50")
    assert cli.balance(trader, "USDT") == 250 * 10**6
    added = cli.account(position).collateral_usd
    out = cli.trade("collateral", "remove", "ETH", "short", "25")
    assert cli.account(position).collateral_usd == added - 25 * 10**6
    assert cli.balance(trader, "USDT") == 250 * 10**6 + units(out["amount"], 6)
    cli.trade("close", "ETH", "short")
    assert cli.chain.get_account_info(position).value is None


def test_payoff_market_positions_are_in_payoff_units(cli: CliEnv) -> None:
    trader = cli.trader.pubkey()
    cli.json("faucet", "USDC", "4000")
    cli.json("lp", "deposit", "USDC", "4000")
    cli.json("faucet", "USDC", "200", "--to", str(trader))
    pool = cli.json("pool")
    [eth2] = [c for c in pool["custodies"] if c["symbol"] == "ETH2"]
    assert eth2["payoff"] == "square"
    # 0.1 units of 0.001 * ETH^2: size = 0.1 * 0.001 * price^2; collateral in the stable.
    expected = Decimal("0.1") * Decimal("0.001") * Decimal(eth2["price"]) ** 2
    held = cli.balance(trader, "USDC")
    out = cli.trade("open", "ETH2", "long", "--collateral", "100", "--units", "0.1")
    assert out["collateralToken"] == "USDC"
    assert Decimal(out["sizeUsd"]) == expected
    assert Decimal(out["entryPriceUsd"]) == expected * 10
    assert cli.balance(trader, "USDC") == held - 100 * 10**6
    rows = [p for p in cli.trade("positions")["positions"] if p["symbol"] == "ETH2"]
    assert [r["side"] for r in rows] == ["long"]
    cli.trade("close", "ETH2", "long")
    # An LP deposit into the synthetic market is refused by the program, by name.
    cli.json("faucet", "ETH2", "1")
    code, error = cli.fails("lp", "deposit", "ETH2", "1")
    assert code != 0
    assert "SyntheticCustody" in error["message"], error


def test_bad_input_is_rejected_before_anything_is_sent(cli: CliEnv) -> None:
    trader = cli.trader.pubkey()
    lamports = cli.lamports(trader)
    cases: list[tuple[tuple[str, ...], str, str]] = [
        (("lp", "deposit", "DOGE", "1"), "unknown_symbol", "unknown symbol 'DOGE'"),
        (("lp", "deposit", "SOL", "-1"), "invalid_amount", "must be positive"),
        (("swap", "SOL", "USDC", "0.0000000001"), "invalid_amount", "more than 9 decimal"),
        (("lp", "deposit", "USDC", "1.0000001"), "invalid_amount", "more than 6 decimal"),
        (
            ("open", "SOL", "long", "--collateral", "1", "--leverage", "50.01"),
            "leverage_too_high",
            "exceeds the maximum 50x",
        ),
        (
            ("open", "SOL", "long", "--collateral", "1", "--size", "100000"),
            "leverage_too_high",
            "exceeds the maximum",
        ),
        (("lp", "deposit", "WBTC", "1"), "missing_token_account", "has no WBTC token account"),
        (("lp", "deposit", "SOL", "1000"), "insufficient_balance", "insufficient SOL"),
        (("close", "WBTC", "long"), "no_position", "no long WBTC position"),
        (("open", "USDC", "long", "--collateral", "1", "--size", "2"), "invalid_market", "stable"),
        (
            ("open", "SOL", "sideways", "--collateral", "1", "--size", "2"),
            "usage",
            "invalid choice",
        ),
    ]
    for args, code, message in cases:
        status, error = cli.fails(*args, keypair=cli.trader_path)
        assert (status, error["code"]) == (2, code), args
        assert message in error["message"], (args, error)
    # The program's own error, by name from the IDL, with the failing log lines; simulated only.
    status, error = cli.fails(
        "swap", "SOL", "USDC", "1", "--min-out", "10000", keypair=cli.trader_path
    )
    assert status == 1
    assert error["code"] == "program_error"
    assert error["program_error"]["name"] == "SlippageExceeded"
    assert error["program_error"]["message"] == "Output is below the requested minimum"
    assert any("Error Code: SlippageExceeded" in line for line in error["logs"])
    # Not even a fee was paid by any of them.
    assert cli.lamports(trader) == lamports


def test_errors_for_humans_are_one_line(cli: CliEnv) -> None:
    result = cli.run("lp", "deposit", "SOL", "1.0000000001", keypair=cli.trader_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: amount 1.0000000001 has more than 9 decimal places"
    ]
    result = cli.run("oracle", "set", "SOL", "100", keypair=cli.trader_path)
    assert result.returncode == 2
    assert "is not the oracle authority" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_rpc_names_the_url(cli: CliEnv) -> None:
    result = cli.run("pool", "--url", "http://127.0.0.1:9", "--json")
    assert result.returncode == 1
    error = one_object(result.stdout)["error"]
    assert error["code"] == "rpc_unreachable"
    assert "http://127.0.0.1:9" in error["message"]


def test_human_output_has_tables(cli: CliEnv) -> None:
    result = cli.run("pool")
    assert result.returncode == 0, result.stderr
    for symbol in ("SOL", "ETH", "WBTC", "USDC", "USDT"):
        assert symbol in result.stdout
    assert "AUM" in result.stdout
    assert "LP price" in result.stdout
