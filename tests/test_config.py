from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from server.config import ConfigError, flag_for, load_settings


def test_defaults_match_product_md() -> None:
    s = load_settings(env={})
    assert (s.host, s.http_port, s.live_port) == ("127.0.0.1", 8000, 8765)
    assert s.data_dir == Path(".seda").resolve()
    assert s.database_url is None and s.jwt_secret is None and s.feature_social is False


def test_env_and_overrides() -> None:
    s = load_settings(
        env={"SEDA_HTTP_PORT": "9000", "FEATURE_SOCIAL": "1", "DATABASE_URL": "postgresql://x/y"},
        overrides={"SEDA_HTTP_PORT": "9100"},
    )
    assert s.http_port == 9100 and s.feature_social is True and s.database_url == "postgresql://x/y"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"SEDA_HTTP_PORT": "http"}, "SEDA_HTTP_PORT"),
        ({"SEDA_LIVE_PORT": "70000"}, "SEDA_LIVE_PORT"),
        ({"FEATURE_SOCIAL": "maybe"}, "FEATURE_SOCIAL"),
        ({"SEDA_LOGIN_FAILS_PER_MIN": "five"}, "SEDA_LOGIN_FAILS_PER_MIN"),
        ({"SEDA_LOGIN_FAILS_PER_MIN": "-1"}, "SEDA_LOGIN_FAILS_PER_MIN"),
        ({"SEDA_AUTH_PER_MIN_PER_ADDR": "2.5"}, "SEDA_AUTH_PER_MIN_PER_ADDR"),
        ({"SEDA_AUTH_PER_MIN_PER_ADDR": "-20"}, "SEDA_AUTH_PER_MIN_PER_ADDR"),
        ({"SEDA_TRUSTED_PROXIES": "10.0.0.1, proxy.local"}, "SEDA_TRUSTED_PROXIES"),
        ({"SEDA_TRUSTED_PROXIES": "10.0.0.0/33"}, "SEDA_TRUSTED_PROXIES"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env=env)


def test_flag_names() -> None:
    assert flag_for("SEDA_HTTP_PORT") == "--http-port"
    assert flag_for("DATABASE_URL") == "--database-url"


def test_auth_limits_default_on_and_zero_turns_them_off() -> None:
    s = load_settings(env={})
    assert (s.login_fails_per_min, s.auth_per_min_per_addr, s.trusted_proxies) == (5, 20, ())
    s = load_settings(env={"SEDA_LOGIN_FAILS_PER_MIN": "0", "SEDA_AUTH_PER_MIN_PER_ADDR": "0"})
    assert (s.login_fails_per_min, s.auth_per_min_per_addr) == (0, 0)


def test_trusted_proxies_are_addresses_and_blocks() -> None:
    s = load_settings(env={"SEDA_TRUSTED_PROXIES": " 10.0.0.0/8, 192.168.1.7 ,::1,"})
    assert s.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.7/32"),
        ipaddress.ip_network("::1/128"),
    )
    assert load_settings(env={"SEDA_TRUSTED_PROXIES": ""}).trusted_proxies == ()
