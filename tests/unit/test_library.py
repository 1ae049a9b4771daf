"""Library logic that needs no validator: locating/building, decoding, the CLI parser."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey
from support import b58encode

from perpool import cli
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
from perpool.program import PROGRAM_ID, account_discriminator, config_pda, event_discriminator


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

    assert account_discriminator("Config") == _account_discriminator("Config")
    assert event_discriminator("ConfigInitialized") == _event_discriminator("ConfigInitialized")


def test_config_pda_is_deterministic() -> None:
    pda, bump = config_pda()
    assert pda == Pubkey.create_program_address([b"config", bytes([bump])], PROGRAM_ID)
    assert not pda.is_on_curve()


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
