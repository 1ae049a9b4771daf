"""Library logic that needs no validator: locating/building, decoding, the CLI parser."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyth_fixture import ACCOUNT_LEN, DISCRIMINATOR, PriceUpdate
from solders.pubkey import Pubkey

from perpool import cli, pda
from perpool.client import instruction_hash
from perpool.localnet import (
    ClockState,
    ClockSysvar,
    LocalnetError,
    binary_is_stale,
    cargo_target_dir,
    find_repo_root,
    parse_faucet_line,
    validator_binary,
    validator_sources,
)
from perpool.program import PROGRAM_ID, account_discriminator, b58encode, event_discriminator


def make_checkout(root: Path) -> Path:
    (root / "localnet" / "validator" / "src").mkdir(parents=True)
    (root / "localnet" / "target" / "release").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname='x'\n")
    (root / "localnet" / "Cargo.toml").write_text("[workspace]\n")
    (root / "localnet" / "Cargo.lock").write_text("")
    (root / "localnet" / "validator" / "src" / "main.rs").write_text("fn main() {}\n")
    (root / "localnet" / "target" / "release" / "junk.rs").write_text("")
    return root


def set_mtime(path: Path, mtime: float) -> None:
    os.utime(path, (mtime, mtime))


def test_find_repo_root_from_subdirectory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_checkout(tmp_path / "co")
    monkeypatch.delenv("PERPOOL_ROOT", raising=False)
    assert find_repo_root(root / "localnet" / "validator" / "src") == root.resolve()


def test_find_repo_root_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_checkout(tmp_path / "co")
    monkeypatch.setenv("PERPOOL_ROOT", str(root))
    assert find_repo_root(Path("/")) == root.resolve()
    monkeypatch.setenv("PERPOOL_ROOT", str(tmp_path))
    with pytest.raises(LocalnetError):
        find_repo_root()


def test_this_checkout_is_found() -> None:
    root = find_repo_root(Path(__file__).parent)
    assert (root / "localnet" / "Cargo.toml").is_file()


def test_sources_skip_target_dirs(tmp_path: Path) -> None:
    root = make_checkout(tmp_path)
    names = sorted(p.relative_to(root / "localnet").as_posix() for p in validator_sources(root))
    assert names == ["Cargo.lock", "Cargo.toml", "validator/src/main.rs"]


def test_binary_staleness(tmp_path: Path) -> None:
    root = make_checkout(tmp_path)
    binary = tmp_path / "bin" / "perpool-localnet"
    assert binary_is_stale(binary, root)  # missing
    binary.parent.mkdir()
    binary.write_text("")
    for src in validator_sources(root):
        set_mtime(src, 1_000_000)
    set_mtime(binary, 2_000_000)
    assert not binary_is_stale(binary, root)
    set_mtime(root / "localnet" / "Cargo.lock", 3_000_000)
    assert binary_is_stale(binary, root)
    set_mtime(root / "localnet" / "Cargo.lock", 1_000_000)
    set_mtime(root / "localnet" / "validator" / "src" / "main.rs", 3_000_000)
    assert binary_is_stale(binary, root)
    # Files cargo does not read (and build output) do not count.
    set_mtime(root / "localnet" / "validator" / "src" / "main.rs", 1_000_000)
    (root / "localnet" / "README.md").write_text("")
    set_mtime(root / "localnet" / "README.md", 3_000_000)
    set_mtime(root / "localnet" / "target" / "release" / "junk.rs", 3_000_000)
    assert not binary_is_stale(binary, root)


def test_target_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_checkout(tmp_path)
    monkeypatch.delenv("CARGO_TARGET_DIR", raising=False)
    monkeypatch.delenv("PERPOOL_LOCALNET_BIN", raising=False)
    assert cargo_target_dir(root) == Path.home() / ".cache" / "perpool" / "target"
    monkeypatch.setenv("CARGO_TARGET_DIR", "/opt/t")
    assert validator_binary(root) == Path("/opt/t/release/perpool-localnet")
    monkeypatch.setenv("CARGO_TARGET_DIR", "rel")
    assert cargo_target_dir(root) == root / "localnet" / "rel"
    monkeypatch.setenv("PERPOOL_LOCALNET_BIN", "/x/y")
    assert validator_binary(root) == Path("/x/y")


@given(
    slot=st.integers(0, 2**64 - 1),
    epoch_start=st.integers(-(2**63), 2**63 - 1),
    epoch=st.integers(0, 2**64 - 1),
    leader_epoch=st.integers(0, 2**64 - 1),
    unix=st.integers(-(2**63), 2**63 - 1),
)
def test_clock_sysvar_decode(
    slot: int, epoch_start: int, epoch: int, leader_epoch: int, unix: int
) -> None:
    data = struct.pack("<QqQQq", slot, epoch_start, epoch, leader_epoch, unix)
    assert ClockSysvar.decode(data) == ClockSysvar(slot, epoch_start, epoch, leader_epoch, unix)


def test_clock_sysvar_too_short() -> None:
    with pytest.raises(LocalnetError):
        ClockSysvar.decode(b"\0" * 39)


def test_parse_faucet_line() -> None:
    pubkey = "2gPaZUEiVQ2UJ5PZbyaMaYU85bem6so3go12FrFKqUoA"
    assert parse_faucet_line("Faucet keypair: /a b/f.json") == Path("/a b/f.json")
    assert parse_faucet_line(f"Faucet keypair: /l/f.json ({pubkey})") == Path("/l/f.json")
    assert parse_faucet_line("RPC URL: http://127.0.0.1:8899") is None


def test_clock_state_json() -> None:
    state = ClockState.from_json({"slot": 5, "unixTimestamp": 1_700_000_000})
    assert state == ClockState(5, 1_700_000_000)
    assert state.to_json() == {"slot": 5, "unixTimestamp": 1_700_000_000}
    with pytest.raises(LocalnetError):
        ClockState.from_json({"slot": 5})


@given(st.binary(min_size=32, max_size=32))
def test_b58encode_matches_pubkey(raw: bytes) -> None:
    assert b58encode(raw) == str(Pubkey(raw))


def test_discriminators_match_anchorpy() -> None:
    from anchorpy.coder.accounts import _account_discriminator
    from anchorpy.coder.event import _event_discriminator

    for name in ("Perpool", "Multisig", "Pool", "Custody", "CustomOracle", "Position"):
        assert account_discriminator(name) == _account_discriminator(name)
    for name in ("AdminAction", "LiquidityAdded", "Swapped"):
        assert event_discriminator(name) == _event_discriminator(name)


def _seeds_of(key: Pubkey, *seeds: bytes) -> bool:
    """``key`` is the canonical PDA of ``seeds``: the highest bump that is off the curve."""
    for bump in range(255, -1, -1):
        try:
            candidate = Pubkey.create_program_address([*seeds, bytes([bump])], PROGRAM_ID)
        except Exception:
            continue
        return candidate == key
    return False


def test_pdas_use_the_programs_seeds() -> None:
    owner, mint = Pubkey.new_unique(), Pubkey.new_unique()
    pool = pda.pool("main")
    custody = pda.custody(pool, mint)
    cases = [
        (pda.perpool(), [b"perpool"]),
        (pda.multisig(), [b"multisig"]),
        (pda.transfer_authority(), [b"transfer_authority"]),
        (pool, [b"pool", b"main"]),
        (pda.lp_token_mint(pool), [b"lp_token_mint", bytes(pool)]),
        (custody, [b"custody", bytes(pool), bytes(mint)]),
        (
            pda.custody_token_account(pool, mint),
            [b"custody_token_account", bytes(pool), bytes(mint)],
        ),
        (pda.custom_oracle(pool, mint), [b"oracle", bytes(pool), bytes(mint)]),
        (
            pda.position(owner, pool, custody, "long"),
            [b"position", bytes(owner), bytes(pool), bytes(custody), b"long"],
        ),
    ]
    for key, seeds in cases:
        assert _seeds_of(key, *seeds), seeds
        assert not key.is_on_curve()
    # No PDA is shared across roles.
    assert len({key for key, _ in cases}) == len(cases)
    assert pda.position(owner, pool, custody, "long") != pda.position(owner, pool, custody, "short")
    with pytest.raises(ValueError, match="side"):
        pda.position(owner, pool, custody, "sideways")


def test_instruction_hash_mirrors_the_program() -> None:
    """sha256(b"perpool:" + name + account keys + borsh args), as ``Multisig::instruction_hash``."""
    a, b = Pubkey.new_unique(), Pubkey.new_unique()
    args = (123).to_bytes(8, "little")
    expected = hashlib.sha256(
        b"perpool:" + b"withdraw_protocol_fees" + bytes(a) + bytes(b) + args
    ).digest()
    assert instruction_hash("withdraw_protocol_fees", [a, b], args) == expected
    assert instruction_hash("withdraw_protocol_fees", [b, a], args) != expected
    assert instruction_hash("remove_custody", [a, b], args) != expected
    assert (
        instruction_hash("withdraw_protocol_fees", [a, b], (124).to_bytes(8, "little")) != expected
    )


def test_pyth_fixture_layout_matches_the_programs_reader() -> None:
    """The offsets ``read_pyth`` uses (state/oracle.rs) for a fully verified update."""
    feed = bytes(range(32))
    data = PriceUpdate(
        feed, price=-5, conf=7, exponent=-8, publish_time=1_700_000_000, ema_price=9
    ).encode()
    assert len(data) == ACCOUNT_LEN == 134
    assert data[:8] == DISCRIMINATOR
    assert data[40] == 1  # Full
    assert data[41:73] == feed
    assert struct.unpack_from("<qQiqqq", data, 73) == (-5, 7, -8, 1_700_000_000, 1_699_999_999, 9)
    partial = PriceUpdate(feed, 1, 0, 0, 0, 1, partial_signatures=3).encode()
    assert partial[40:42] == bytes([0, 3])


def test_cli_parser_accepts_options_anywhere() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["--url", "http://x", "localnet", "time", "advance", "5", "--json"])
    assert args.url == "http://x"
    assert args.json is True
    assert args.seconds == 5
    args = parser.parse_args(["localnet", "slots", "advance", "7"])
    assert args.slots == 7
    assert not hasattr(args, "url")


def test_cli_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: perpool" in capsys.readouterr().err
