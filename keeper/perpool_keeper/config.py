"""Keeper configuration: a TOML file, then environment overrides.

Every key can be overridden with ``PERPOOL_KEEPER__<SECTION>__<KEY>`` (double underscores
separate the path, case-insensitive), e.g. ``PERPOOL_KEEPER__RPC__URLS=http://a,http://b`` or
``PERPOOL_KEEPER__JOBS__LIQUIDATION__INTERVAL_SEC=0.5``. Values are parsed as TOML literals
when they can be (numbers, booleans, ``[...]`` lists) and as strings otherwise; a list key also
accepts a comma-separated string.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_type_hints

ENV_PREFIX = "PERPOOL_KEEPER__"


class KeeperConfigError(ValueError):
    """The configuration file or an override is invalid."""


@dataclass
class RpcConfig:
    urls: list[str] = field(default_factory=lambda: ["http://127.0.0.1:8899"])
    """Ordered: the first healthy URL is used; the next ones on failure."""
    timeout_sec: float = 10.0
    max_attempts: int = 4
    """Attempts of one read across the URL list before the call fails."""
    backoff_base_sec: float = 0.2
    backoff_max_sec: float = 5.0
    cooldown_sec: float = 10.0
    """How long a failed URL is skipped before it is tried first again."""


@dataclass
class TxConfig:
    priority_fee_percentile: int = 75
    priority_fee_min_micro_lamports: int = 0
    priority_fee_cap_micro_lamports: int = 100_000
    compute_margin_pct: int = 20
    compute_unit_floor: int = 50_000
    rebroadcast_interval_sec: float = 1.0
    confirm_poll_sec: float = 0.1
    max_rebuilds: int = 3
    """How many times an expired transaction is rebuilt and re-signed."""


@dataclass
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 9464
    enabled: bool = True


@dataclass
class HealthConfig:
    slot_stall_sec: float = 30.0
    """Unhealthy when the chain slot has not advanced for this long."""
    interval_sec: float = 2.0


@dataclass
class FeedConfig:
    pool: str
    mint: str
    source: str
    """``synthetic``, ``csv``, ``hermes`` or ``pyth_account``."""
    expo: int = -8
    max_source_age_sec: float = 60.0
    # synthetic
    seed: int = 1
    start_price: float = 100.0
    volatility_bps: float = 20.0
    # csv
    path: str = ""
    # hermes
    url: str = "https://hermes.pyth.network"
    feed_id: str = ""
    # pyth_account
    address: str = ""
    conf_bps: float = 0.0
    """Confidence posted for sources without one (synthetic, csv), in bps of the price."""


@dataclass
class OracleJobConfig:
    enabled: bool = False
    interval_sec: float = 1.0
    deviation_bps: float = 50.0
    heartbeat_sec: float = 30.0
    authority_keypair: str = ""
    """The oracle authority; defaults to the keeper's keypair."""
    feeds: list[FeedConfig] = field(default_factory=list)


@dataclass
class AccrualJobConfig:
    enabled: bool = True
    interval_sec: float = 60.0
    funding: bool = True


@dataclass
class LiquidationJobConfig:
    enabled: bool = True
    interval_sec: float = 2.0
    max_per_tick: int = 50
    concurrency: int = 4
    stale_margin_sec: float = 5.0
    """An oracle this close to its max age gets a fresh price in the liquidation transaction."""


@dataclass
class AumJobConfig:
    enabled: bool = True
    interval_sec: float = 60.0


@dataclass
class JobsConfig:
    oracle: OracleJobConfig = field(default_factory=OracleJobConfig)
    accrual: AccrualJobConfig = field(default_factory=AccrualJobConfig)
    liquidation: LiquidationJobConfig = field(default_factory=LiquidationJobConfig)
    aum: AumJobConfig = field(default_factory=AumJobConfig)


@dataclass
class KeeperSection:
    keypair: str = "~/.config/solana/id.json"
    pools: list[str] = field(default_factory=lambda: ["main"])
    dry_run: bool = False
    log_level: str = "INFO"
    drain_timeout_sec: float = 30.0


@dataclass
class KeeperConfig:
    keeper: KeeperSection = field(default_factory=KeeperSection)
    rpc: RpcConfig = field(default_factory=RpcConfig)
    tx: TxConfig = field(default_factory=TxConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)


def load_config(
    path: Path | str | None = None, env: Mapping[str, str] | None = None
) -> KeeperConfig:
    """The file's values over the defaults, then ``PERPOOL_KEEPER__*`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).expanduser().read_text())
        except FileNotFoundError as exc:
            raise KeeperConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise KeeperConfigError(f"{path}: {exc}") from exc
    for key, value in (os.environ if env is None else env).items():
        if key.upper().startswith(ENV_PREFIX):
            parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
            if parts:
                _set_path(data, parts, _parse_env_value(value))
    config: KeeperConfig = _build(KeeperConfig, data, "")
    validate(config)
    return config


def validate(config: KeeperConfig) -> None:
    if not config.rpc.urls:
        raise KeeperConfigError("rpc.urls: at least one RPC URL is needed")
    for name in ("oracle", "accrual", "liquidation", "aum"):
        job = getattr(config.jobs, name)
        if job.interval_sec <= 0:
            raise KeeperConfigError(f"jobs.{name}.interval_sec must be positive")
    for i, feed in enumerate(config.jobs.oracle.feeds):
        if feed.source not in ("synthetic", "csv", "hermes", "pyth_account"):
            raise KeeperConfigError(f"jobs.oracle.feeds[{i}].source: unknown {feed.source!r}")
        if feed.source == "csv" and not feed.path:
            raise KeeperConfigError(f"jobs.oracle.feeds[{i}].path is needed for a csv source")
        if feed.source == "hermes" and not feed.feed_id:
            raise KeeperConfigError(f"jobs.oracle.feeds[{i}].feed_id is needed for hermes")
        if feed.source == "pyth_account" and not feed.address:
            raise KeeperConfigError(f"jobs.oracle.feeds[{i}].address is needed for pyth_account")


def _parse_env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_path(data: dict[str, Any], parts: list[str], value: Any) -> None:
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise KeeperConfigError(f"{where or 'config'}: expected a table")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise KeeperConfigError(f"{where or 'config'}: unknown keys {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{where}.{name}".lstrip("."))
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise KeeperConfigError(f"{where or 'config'}: {exc}") from exc


def _convert(hint: Any, value: Any, where: str) -> Any:
    if isinstance(hint, type) and is_dataclass(hint):
        return _build(hint, value, where)
    origin = getattr(hint, "__origin__", None)
    if origin is list:
        (item,) = hint.__args__
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise KeeperConfigError(f"{where}: expected a list")
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
        raise KeeperConfigError(f"{where}: expected true or false")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise KeeperConfigError(f"{where}: expected a number")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise KeeperConfigError(f"{where}: expected an integer")
    if hint is str:
        if isinstance(value, str):
            return value
        raise KeeperConfigError(f"{where}: expected a string")
    return value
