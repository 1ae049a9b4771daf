"""Where the CLI connects and who it signs as, resolved the way the Solana CLI does it.

Order of precedence, highest first:

* RPC URL: ``--url`` (a URL or a Solana CLI moniker such as ``localhost``/``l``, ``devnet``/``d``),
  ``$PERPOOL_RPC_URL``, ``json_rpc_url`` in the Solana CLI config file, then the localnet
  ``http://127.0.0.1:8899``;
* keypair: ``--keypair``, ``$PERPOOL_KEYPAIR``, ``keypair_path`` in the Solana CLI config file,
  then ``~/.config/solana/id.json``.

The Solana CLI config file is ``--solana-config``, ``$SOLANA_CONFIG`` or
``~/.config/solana/cli/config.yml``; a missing file simply means "nothing configured".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from solders.keypair import Keypair

from perpool.localnet import DEFAULT_URL

MONIKERS = {
    "localhost": DEFAULT_URL,
    "l": DEFAULT_URL,
    "devnet": "https://api.devnet.solana.com",
    "d": "https://api.devnet.solana.com",
    "testnet": "https://api.testnet.solana.com",
    "t": "https://api.testnet.solana.com",
    "mainnet-beta": "https://api.mainnet-beta.solana.com",
    "m": "https://api.mainnet-beta.solana.com",
}


class ConfigError(Exception):
    """The Solana CLI config or a keypair file cannot be used."""


def default_solana_config_path() -> Path:
    env = os.environ.get("SOLANA_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".config" / "solana" / "cli" / "config.yml"


def default_keypair_path() -> Path:
    return Path.home() / ".config" / "solana" / "id.json"


def read_solana_config(path: Path | None = None) -> dict[str, Any]:
    """The Solana CLI config as a dict (empty when the file does not exist)."""
    path = path or default_solana_config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} does not hold a mapping of settings")
    return loaded


def resolve_url(value: str) -> str:
    """A URL as given, or the URL a Solana CLI moniker stands for."""
    return MONIKERS.get(value, value)


@dataclass(frozen=True)
class CliSettings:
    url: str
    keypair_path: Path

    def load_keypair(self) -> Keypair:
        return load_keypair(self.keypair_path)


def resolve_settings(
    url: str | None = None, keypair: str | None = None, solana_config: str | None = None
) -> CliSettings:
    config = read_solana_config(Path(solana_config).expanduser() if solana_config else None)
    chosen_url = (
        url
        or os.environ.get("PERPOOL_RPC_URL")
        or str(config.get("json_rpc_url") or "")
        or DEFAULT_URL
    )
    chosen_keypair = (
        keypair
        or os.environ.get("PERPOOL_KEYPAIR")
        or str(config.get("keypair_path") or "")
        or str(default_keypair_path())
    )
    return CliSettings(url=resolve_url(chosen_url), keypair_path=Path(chosen_keypair).expanduser())


def load_keypair(path: Path) -> Keypair:
    """A Solana CLI keypair file (a JSON array of 64 bytes)."""
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no keypair at {path}: create one with `solana-keygen new` or pass --keypair"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read keypair {path}: {exc.strerror}") from exc
    try:
        return Keypair.from_json(text)
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not a Solana keypair file (a JSON array of 64 bytes)"
        ) from exc
