"""The CLI's library pieces that need no chain: amounts, settings, pool specs, JSON values."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair

from perpool import cli
from perpool.amounts import (
    AmountError,
    format_units,
    parse_bps_fraction,
    parse_oracle_price,
    to_base_units,
)
from perpool.config import ConfigError, load_keypair, resolve_settings
from perpool.spec import (
    SpecError,
    config_parameters,
    default_spec_path,
    load_spec,
    localnet_mint_authority,
    localnet_mint_keypair,
    parse_spec,
)


@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [
        ("1.5", 9, 1_500_000_000),
        ("100", 6, 100_000_000),
        ("0.000001", 6, 1),
        ("1_000", 0, 1000),
        ("2.50000", 2, 250),
        ("1.000000000000000000000000000000000", 6, 1_000_000),
    ],
)
def test_amounts_convert_exactly(text: str, decimals: int, expected: int) -> None:
    assert to_base_units(text, decimals) == expected


@pytest.mark.parametrize(
    ("text", "decimals", "message"),
    [
        ("-1", 6, "must be positive"),
        ("0", 6, "greater than zero"),
        ("1.0000001", 6, "more than 6 decimal places"),
        ("1.00000000000000000000000000000001", 6, "more than 6 decimal places"),
        ("abc", 6, "not a number"),
        ("nan", 6, "not a finite number"),
        ("1e30", 6, "too large"),
        ("18446744073709.551616", 6, "too large"),
    ],
)
def test_bad_amounts_are_rejected(text: str, decimals: int, message: str) -> None:
    with pytest.raises(AmountError, match=message):
        to_base_units(text, decimals)


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=0, max_value=18))
def test_format_then_parse_round_trips(amount: int, decimals: int) -> None:
    assert to_base_units(format_units(amount, decimals), decimals, allow_zero=True) == amount


def test_oracle_prices_keep_every_digit() -> None:
    assert parse_oracle_price("150.25") == (15_025_000_000, -8)
    assert parse_oracle_price("0.0000000001234") == (1234, -13)
    with pytest.raises(AmountError):
        parse_oracle_price("0")
    with pytest.raises(AmountError, match="18 decimal places"):
        parse_oracle_price("0.0000000000000000001")
    assert parse_bps_fraction("0.25") == 2500
    for bad in ("0", "1.5", "0.00001"):
        with pytest.raises(AmountError):
            parse_bps_fraction(bad)


def test_settings_follow_the_solana_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PERPOOL_RPC_URL", "PERPOOL_KEYPAIR", "SOLANA_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    # Nothing configured: localnet and the Solana CLI's default keypair path.
    settings = resolve_settings()
    assert settings.url == "http://127.0.0.1:8899"
    assert settings.keypair_path == tmp_path / ".config" / "solana" / "id.json"
    config = tmp_path / ".config" / "solana" / "cli" / "config.yml"
    config.parent.mkdir(parents=True)
    config.write_text(
        "json_rpc_url: https://api.devnet.solana.com\nkeypair_path: /keys/me.json\n"
        "commitment: confirmed\n"
    )
    settings = resolve_settings()
    assert (settings.url, settings.keypair_path) == (
        "https://api.devnet.solana.com",
        Path("/keys/me.json"),
    )
    monkeypatch.setenv("PERPOOL_RPC_URL", "http://env:1")
    assert resolve_settings().url == "http://env:1"
    settings = resolve_settings(url="localhost", keypair="~/k.json")
    assert settings.url == "http://127.0.0.1:8899"
    assert settings.keypair_path == tmp_path / "k.json"
    assert resolve_settings(url="m").url == "https://api.mainnet-beta.solana.com"


def test_keypair_files(tmp_path: Path) -> None:
    keypair = Keypair()
    path = tmp_path / "id.json"
    path.write_text(keypair.to_json())
    assert load_keypair(path).pubkey() == keypair.pubkey()
    with pytest.raises(ConfigError, match="no keypair at"):
        load_keypair(tmp_path / "missing.json")
    path.write_text("[1, 2, 3]")
    with pytest.raises(ConfigError, match="not a Solana keypair file"):
        load_keypair(path)


def test_shipped_localnet_spec() -> None:
    spec = load_spec(default_spec_path())
    assert spec.pool_name == "main"
    assert [(c.symbol, c.decimals, c.stable) for c in spec.custodies] == [
        ("SOL", 9, False),
        ("ETH", 8, False),
        ("WBTC", 8, False),
        ("USDC", 6, True),
        ("USDT", 6, True),
        ("ETH2", 6, False),
    ]
    eth2 = spec.by_symbol("ETH2")
    assert eth2 is not None
    assert eth2.config["payoff"] == "square"
    sol = spec.by_symbol("sol")
    assert sol is not None
    assert sol.test_mint
    assert sol.mint == localnet_mint_keypair("main", "SOL").pubkey()
    assert sol.price == (15_000_000_000, -8)
    assert sol.conf == 5_000_000
    # Test mint addresses are a function of pool and symbol only.
    assert (
        localnet_mint_keypair("main", "SOL").pubkey()
        != localnet_mint_keypair("other", "SOL").pubkey()
    )
    assert localnet_mint_authority().pubkey() == localnet_mint_authority().pubkey()


def _spec(config: dict[str, object], **custody: object) -> dict[str, object]:
    entry = {"symbol": "SOL", "decimals": 9, "price": "1", "config": config} | custody
    return {"pool": {"name": "p"}, "custody": [entry]}


def test_custody_config_keys_are_the_library_functions() -> None:
    known = config_parameters()
    assert "max_initial_leverage" in known
    assert "oracle_account" not in known
    assert "client_types" not in known
    spec = parse_spec(_spec({"max_initial_leverage": 20_000, "pyth": False}), Path("x.toml"))
    assert spec.custodies[0].config == {"max_initial_leverage": 20_000, "pyth": False}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_spec({"max_leverage_typo": 1}), "unknown config key 'max_leverage_typo'"),
        (_spec({"max_leverage": "high"}), "max_leverage must be an integer"),
        (_spec({"max_leverage": -1}), "max_leverage must not be negative"),
        (_spec({"pyth": 1}), "pyth must be true or false"),
        (_spec({}, colour="red"), "unknown key 'colour'"),
        (_spec({}, price="-3"), "price must be greater than zero"),
        (_spec({}, mint="not-an-address"), "is not a base58 address"),
        ({"pool": {"name": "p"}}, "has no [[custody]] tables"),
    ],
)
def test_spec_errors_name_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse_spec(raw, Path("pool.toml"))
    assert message in str(exc.value)
    assert "pool.toml" in str(exc.value)


def test_every_command_takes_json() -> None:
    parser = cli.build_parser()
    for argv in (
        ["setup", "--simulate"],
        ["oracle", "set", "SOL", "1"],
        ["faucet", "SOL", "1", "--to", "x"],
        ["lp", "deposit", "SOL", "1"],
        ["lp", "withdraw", "SOL", "1"],
        ["lp", "quote", "deposit", "SOL", "1"],
        ["open", "SOL", "long", "--collateral", "1", "--units", "1"],
        ["close", "SOL", "short", "--fraction", "0.5"],
        ["collateral", "remove", "SOL", "long", "5"],
        ["swap", "SOL", "USDC", "1"],
        ["quote", "swap", "SOL", "USDC", "1"],
        ["positions", "--owner", "x"],
        ["pool"],
        ["balances"],
        ["account", "x"],
    ):
        args = parser.parse_args([*argv, "--json"])
        assert args.json is True, argv
        assert args.handler is not None, argv
