"""Pool specification files (TOML) for ``perpool setup`` and the symbol registry of the CLI.

A spec names the pool, its admin multisig and one ``[[custody]]`` table per token; each
custody's ``[custody.config]`` table holds keyword arguments of
:func:`perpool.custody_config.custody_config`, checked against its signature, so every config
option the program gains is available here without changes to this module. The shipped
localnet spec is ``perpool/specs/localnet.toml`` (:func:`default_spec_path`).

A custody's mint is either given (``mint = "<address>"``) or, on a localnet, a test mint whose
address is derived from the pool name and the symbol (:func:`localnet_mint_keypair`): every command
finds the same mint from the spec alone, with no state file, across validator restarts.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpool.amounts import AmountError, parse_oracle_price, to_base_units
from perpool.custody_config import custody_config

# custody_config parameters the spec does not set: the oracle account is the custody's oracle
# PDA unless the custody table names one, and the IDL types come from the connected program.
_COMPUTED_PARAMS = frozenset({"oracle_account", "client_types"})
_CUSTODY_KEYS = frozenset(
    {"symbol", "decimals", "stable", "mint", "price", "conf", "ema", "oracle_account", "config"}
)
_TOP_KEYS = frozenset({"pool", "admin", "custody"})


class SpecError(ValueError):
    """A spec file that cannot be used; the message names the file and the offending key."""


def default_spec_path() -> Path:
    """``$PERPOOL_POOL_CONFIG``, else the localnet spec shipped with the package."""
    env = os.environ.get("PERPOOL_POOL_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path(str(resources.files("perpool") / "specs" / "localnet.toml"))


def localnet_mint_keypair(pool_name: str, symbol: str) -> Keypair:
    """The keypair of a localnet test mint (its address; anyone can derive it, so localnet only)."""
    seed = hashlib.sha256(f"perpool/localnet-test-mint/{pool_name}/{symbol}".encode()).digest()
    return Keypair.from_seed(seed)


def localnet_mint_authority() -> Keypair:
    """Mint authority of every localnet test mint: public by design, so any user's faucet works."""
    return Keypair.from_seed(hashlib.sha256(b"perpool/localnet-test-mint-authority").digest())


@dataclass(frozen=True)
class CustodySpec:
    symbol: str
    decimals: int
    stable: bool
    mint: Pubkey
    test_mint: bool
    """True when the mint is a localnet test mint that setup creates."""
    price: tuple[int, int] | None
    """Initial oracle price as ``(mantissa, expo)``; None for an oracle posted elsewhere."""
    conf: int
    ema: int | None
    oracle_account: Pubkey | None
    config: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for :func:`custody_config`."""


@dataclass(frozen=True)
class PoolSpec:
    path: Path
    pool_name: str
    admins: tuple[Pubkey, ...]
    """Multisig signers; empty means "the keypair that runs setup"."""
    min_signatures: int
    oracle_authority: Pubkey | None
    custodies: tuple[CustodySpec, ...]

    def by_symbol(self, symbol: str) -> CustodySpec | None:
        wanted = symbol.upper()
        return next((c for c in self.custodies if c.symbol.upper() == wanted), None)

    @property
    def symbols(self) -> list[str]:
        return [c.symbol for c in self.custodies]


def config_parameters() -> dict[str, inspect.Parameter]:
    """The ``custody_config`` keyword arguments a spec may set."""
    params = inspect.signature(custody_config).parameters
    return {name: p for name, p in params.items() if name not in _COMPUTED_PARAMS}


def load_spec(path: Path) -> PoolSpec:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SpecError(f"pool spec {path} does not exist") from exc
    except OSError as exc:
        raise SpecError(f"cannot read pool spec {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from exc
    return parse_spec(raw, path)


def parse_spec(raw: dict[str, Any], path: Path) -> PoolSpec:
    where = str(path)
    _no_unknown(raw, _TOP_KEYS, where)
    pool = raw.get("pool", {})
    _no_unknown(pool, {"name"}, f"{where} [pool]")
    pool_name = _typed(pool.get("name", "main"), str, f"{where} [pool] name")
    if not pool_name or len(pool_name.encode()) > 32:
        raise SpecError(f"{where} [pool] name must be 1 to 32 bytes")
    admin = raw.get("admin", {})
    _no_unknown(admin, {"signers", "min_signatures", "oracle_authority"}, f"{where} [admin]")
    admins = tuple(
        _pubkey(s, f"{where} [admin] signers") for s in _typed(admin.get("signers", []), list, "")
    )
    min_signatures = _typed(admin.get("min_signatures", 1), int, f"{where} [admin] min_signatures")
    oracle_authority = admin.get("oracle_authority")
    custodies = [
        _custody(entry, pool_name, f"{where} [[custody]] #{i + 1}")
        for i, entry in enumerate(_typed(raw.get("custody", []), list, f"{where} custody"))
    ]
    if not custodies:
        raise SpecError(f"{where} has no [[custody]] tables")
    seen: set[str] = set()
    for c in custodies:
        if c.symbol.upper() in seen:
            raise SpecError(f"{where}: symbol {c.symbol} appears twice")
        seen.add(c.symbol.upper())
    return PoolSpec(
        path=path,
        pool_name=pool_name,
        admins=admins,
        min_signatures=min_signatures,
        oracle_authority=(
            _pubkey(oracle_authority, f"{where} [admin] oracle_authority")
            if oracle_authority
            else None
        ),
        custodies=tuple(custodies),
    )


def _custody(entry: Any, pool_name: str, where: str) -> CustodySpec:
    if not isinstance(entry, dict):
        raise SpecError(f"{where} must be a table")
    _no_unknown(entry, _CUSTODY_KEYS, where)
    symbol = _typed(entry.get("symbol"), str, f"{where} symbol")
    where = f"{where} ({symbol})"
    decimals = _typed(entry.get("decimals"), int, f"{where} decimals")
    if not 0 <= decimals <= 18:
        raise SpecError(f"{where} decimals must be between 0 and 18")
    mint_text = entry.get("mint")
    mint = (
        _pubkey(mint_text, f"{where} mint")
        if mint_text
        else localnet_mint_keypair(pool_name, symbol).pubkey()
    )
    price = None
    ema = None
    try:
        if "price" in entry:
            price = parse_oracle_price(str(entry["price"]), f"{where} price")
        if "ema" in entry:
            ema_mantissa, ema_expo = parse_oracle_price(str(entry["ema"]), f"{where} ema")
            if price is None or ema_expo != price[1]:
                raise SpecError(f"{where} ema needs price with the same number of decimals")
            ema = ema_mantissa
        conf = 0
        if price is not None:
            conf_text = str(entry.get("conf", "0"))
            conf = to_base_units(conf_text, -price[1], f"{where} conf", allow_zero=True)
    except AmountError as exc:
        raise SpecError(str(exc)) from exc
    oracle_account = entry.get("oracle_account")
    return CustodySpec(
        symbol=symbol,
        decimals=decimals,
        stable=_typed(entry.get("stable", False), bool, f"{where} stable"),
        mint=mint,
        test_mint=not mint_text,
        price=price,
        conf=conf,
        ema=ema,
        oracle_account=_pubkey(oracle_account, f"{where} oracle_account")
        if oracle_account
        else None,
        config=_config_kwargs(entry.get("config", {}), f"{where} [custody.config]"),
    )


def _config_kwargs(table: Any, where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise SpecError(f"{where} must be a table")
    params = config_parameters()
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        param = params.get(key)
        if param is None:
            known = ", ".join(sorted(params))
            raise SpecError(f"{where}: unknown config key {key!r} (known: {known})")
        kwargs[key] = _config_value(value, str(param.annotation), f"{where} {key}")
    return kwargs


def _config_value(value: Any, annotation: str, where: str) -> Any:
    # Annotations are strings (postponed evaluation); check the simple types, pass others on.
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where} must be an integer")
        if value < 0:
            raise SpecError(f"{where} must not be negative")
    elif annotation == "bool" and not isinstance(value, bool):
        raise SpecError(f"{where} must be true or false")
    elif annotation == "bytes":
        if not isinstance(value, str):
            raise SpecError(f"{where} must be a hex string")
        try:
            return bytes.fromhex(value.removeprefix("0x"))
        except ValueError as exc:
            raise SpecError(f"{where} is not valid hex") from exc
    return value


def _no_unknown(table: Any, allowed: set[str] | frozenset[str], where: str) -> None:
    if not isinstance(table, dict):
        raise SpecError(f"{where} must be a table")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}")


def _typed(value: Any, kind: type, where: str) -> Any:
    if value is None:
        raise SpecError(f"{where} is required")
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SpecError(f"{where} must be of type {kind.__name__}")
    return value


def _pubkey(value: Any, where: str) -> Pubkey:
    try:
        return Pubkey.from_string(str(value))
    except ValueError as exc:
        raise SpecError(f"{where}: {value!r} is not a base58 address") from exc
