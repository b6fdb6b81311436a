"""Settings, read from the environment; a CLI flag of the same name overrides."""

from __future__ import annotations

import ipaddress
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it."""


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be 0/1/true/false, got {raw!r}")


def _parse_port(name: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a port number, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be between 0 and 65535, got {port}")
    return port


def _parse_positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


def _parse_int(name: str, raw: str, *, least: int, what: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None
    if value < least:
        raise ConfigError(f"{name} must be at least {least}, got {value}")
    return value


def _parse_positive_int(name: str, raw: str) -> int:
    return _parse_int(name, raw, least=1, what="an integer")


def _parse_count(name: str, raw: str) -> int:
    """A whole number where 0 means off."""
    return _parse_int(name, raw, least=0, what="a whole number (0: off)")


def _parse_node_id(name: str, raw: str) -> str | None:
    if not raw:
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise ConfigError(f"{name} must be a UUID, got {raw!r}") from None


def _parse_lease_ttl(name: str, raw: str) -> float:
    value = _parse_positive_float(name, raw)
    if value < 0.5:
        raise ConfigError(f"{name} must be at least 0.5 seconds, got {value}")
    return value


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_networks(name: str, raw: str) -> tuple[Network, ...]:
    """Comma-separated IP addresses or CIDR blocks (``10.0.0.0/8, ::1``); empty means none."""
    networks: list[Network] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(f"{name} must list IP addresses or CIDR blocks, got {part!r}") from None
    return tuple(networks)


@dataclass(frozen=True)
class Settings:
    """Everything the process reads from outside at start-up."""

    host: str = "127.0.0.1"
    http_port: int = 8000
    live_port: int = 8765
    data_dir: Path = field(default_factory=lambda: Path(".seda"))
    database_url: str | None = None
    jwt_secret: str | None = None
    encryption_key: str | None = None  # base64url of 32 bytes; generated into the data dir when unset
    feature_social: bool = False
    token_ttl_s: int = 7 * 24 * 3600
    db_pool_size: int = 10
    # Postgres fsync; only the test suite turns it off, on its own throwaway cluster.
    pg_fsync: bool = True
    room_idle_s: float = 300.0
    snapshot_every: int = 200
    chat_rate: int = 5
    chat_rate_window_s: float = 5.0
    ops_per_second: int = 30
    invalid_frame_limit: int = 20
    invalid_frame_window_s: float = 10.0
    coalesce_ms: float = 5.0
    outbox_limit_bytes: int = 1 << 20
    max_frame_bytes: int = 64 * 1024
    # Failed logins per account per minute before a lockout that doubles each time (0: off).
    login_fails_per_min: int = 5
    # Login and sign-up attempts per client address per minute (0: off).
    auth_per_min_per_addr: int = 20
    # Proxies whose X-Forwarded-For names the client; with none, the socket's peer is the client.
    trusted_proxies: tuple[Network, ...] = ()
    # Many processes and machines (ARCHITECTURE.md): worker processes on this machine, the NATS
    # that nodes talk over (unset with one worker: an in-process bus, no NATS), room lease TTL.
    workers: int = 1
    nats_url: str | None = None
    lease_ttl_s: float = 5.0
    # Set by `seda serve --workers N` for its workers: bind the shared ports with SO_REUSEPORT,
    # and exit when the parent (this pid) is gone.
    reuse_port: bool = False
    parent_pid: int | None = None
    # How long a stopping server waits for its rooms and journal to flush (Postgres away: no longer).
    shutdown_timeout_s: float = 20.0
    # This node's id in the cluster (the parent names its workers); unset: the data dir's own.
    node_id: str | None = None
    # The collector's youngest-generation threshold for `seda serve` (server/collector.py);
    # 0 leaves CPython's defaults.
    gc_gen0: int = 50_000
    # Overload (server/live/admission.py): while a room's oldest unanswered request has waited
    # this long, chat into it is refused with rate_limited and a retry_after_ms of about that wait,
    # at most overload_retry_ms (0: never).
    overload_behind_ms: int = 250
    overload_retry_ms: int = 1000


# env var -> (field name, parser)
_ENV: dict[str, tuple[str, Any]] = {
    "SEDA_HOST": ("host", lambda n, v: v),
    "SEDA_HTTP_PORT": ("http_port", _parse_port),
    "SEDA_LIVE_PORT": ("live_port", _parse_port),
    "SEDA_DATA_DIR": ("data_dir", lambda n, v: Path(v)),
    "DATABASE_URL": ("database_url", lambda n, v: v or None),
    "SEDA_JWT_SECRET": ("jwt_secret", lambda n, v: v or None),
    "SEDA_ENCRYPTION_KEY": ("encryption_key", lambda n, v: v or None),
    "FEATURE_SOCIAL": ("feature_social", _parse_bool),
    "SEDA_TOKEN_TTL_S": ("token_ttl_s", _parse_positive_int),
    "SEDA_DB_POOL_SIZE": ("db_pool_size", _parse_positive_int),
    "SEDA_PG_FSYNC": ("pg_fsync", _parse_bool),
    "ROOM_IDLE_S": ("room_idle_s", _parse_positive_float),
    "SEDA_SNAPSHOT_EVERY": ("snapshot_every", _parse_positive_int),
    "SEDA_CHAT_RATE": ("chat_rate", _parse_positive_int),
    "SEDA_CHAT_RATE_WINDOW_S": ("chat_rate_window_s", _parse_positive_float),
    "SEDA_OPS_PER_SECOND": ("ops_per_second", _parse_positive_int),
    "SEDA_INVALID_FRAME_LIMIT": ("invalid_frame_limit", _parse_positive_int),
    "SEDA_INVALID_FRAME_WINDOW_S": ("invalid_frame_window_s", _parse_positive_float),
    "SEDA_COALESCE_MS": ("coalesce_ms", _parse_positive_float),
    "SEDA_OUTBOX_LIMIT_BYTES": ("outbox_limit_bytes", _parse_positive_int),
    "SEDA_LOGIN_FAILS_PER_MIN": ("login_fails_per_min", _parse_count),
    "SEDA_AUTH_PER_MIN_PER_ADDR": ("auth_per_min_per_addr", _parse_count),
    "SEDA_TRUSTED_PROXIES": ("trusted_proxies", _parse_networks),
    "SEDA_WORKERS": ("workers", _parse_positive_int),
    "SEDA_NATS_URL": ("nats_url", lambda n, v: v or None),
    "SEDA_LEASE_TTL_S": ("lease_ttl_s", _parse_lease_ttl),
    "SEDA_REUSE_PORT": ("reuse_port", _parse_bool),
    "SEDA_NODE_ID": ("node_id", _parse_node_id),
    "SEDA_SHUTDOWN_TIMEOUT_S": ("shutdown_timeout_s", _parse_positive_float),
    "SEDA_GC_GEN0": ("gc_gen0", _parse_count),
    "SEDA_OVERLOAD_BEHIND_MS": ("overload_behind_ms", _parse_count),
    "SEDA_OVERLOAD_RETRY_MS": ("overload_retry_ms", _parse_positive_int),
    "SEDA_PARENT_PID": ("parent_pid", lambda n, v: _parse_positive_int(n, v) if v else None),
}

# The environment each setting is read from (tests hand their settings to a server process this way).
ENV_SETTINGS = _ENV

# Names of the settings a flag may override (``--http-port`` for ``SEDA_HTTP_PORT``).
FLAG_ENV_NAMES = (
    "SEDA_HOST",
    "SEDA_HTTP_PORT",
    "SEDA_LIVE_PORT",
    "SEDA_DATA_DIR",
    "DATABASE_URL",
    "SEDA_WORKERS",
    "SEDA_NATS_URL",
)


def load_settings(
    env: Mapping[str, str] | None = None, overrides: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from ``env`` (default ``os.environ``), then ``overrides`` keyed by env name."""
    source = dict(os.environ if env is None else env)
    source.update({k: v for k, v in (overrides or {}).items() if v is not None})
    values: dict[str, Any] = {}
    for env_name, (field_name, parse) in _ENV.items():
        if env_name in source:
            values[field_name] = parse(env_name, source[env_name])
    known = {f.name for f in fields(Settings)}
    assert set(values) <= known
    settings = replace(Settings(), **values)
    return replace(settings, data_dir=settings.data_dir.expanduser().resolve())


def flag_for(env_name: str) -> str:
    """``SEDA_HTTP_PORT`` -> ``--http-port``; ``DATABASE_URL`` -> ``--database-url``."""
    return "--" + env_name.removeprefix("SEDA_").lower().replace("_", "-")
