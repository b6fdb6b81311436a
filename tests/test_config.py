from __future__ import annotations

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
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env=env)


def test_flag_names() -> None:
    assert flag_for("SEDA_HTTP_PORT") == "--http-port"
    assert flag_for("DATABASE_URL") == "--database-url"
