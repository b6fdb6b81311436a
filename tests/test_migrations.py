from __future__ import annotations

from pathlib import Path

import pytest

from storage.database import open_database
from storage.migrations import discover, migrate
from tests.pg import PgCluster


async def test_migrations_apply_once_then_are_a_no_op(cluster: PgCluster, aio_loop: None) -> None:
    expected = [m.version for m in discover()]
    assert expected and expected == sorted(expected)
    async with cluster.fresh_database(template=None) as dsn, open_database(dsn, max_size=2) as db:
        assert await migrate(db) == expected
        assert await migrate(db) == []
        recorded = [r["version"] for r in await db.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
        assert recorded == expected
        # the schema is really there
        assert await db.fetchval("SELECT count(*) FROM users") == 0


async def test_a_failing_migration_rolls_back_and_is_not_recorded(
    cluster: PgCluster, aio_loop: None, tmp_path: Path
) -> None:
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "002_broken.sql").write_text("CREATE TABLE b (x int); SELECT * FROM no_such_table;")
    migrations = discover(tmp_path)
    async with cluster.fresh_database(template=None) as dsn, open_database(dsn, max_size=2) as db:
        with pytest.raises(Exception, match="no_such_table"):
            await migrate(db, migrations)
        assert [r["version"] for r in await db.fetch("SELECT version FROM schema_migrations")] == [1]
        assert await db.fetchval("SELECT to_regclass('b')") is None


def test_discover_rejects_badly_named_files(tmp_path: Path) -> None:
    (tmp_path / "1_x.sql").write_text("")
    with pytest.raises(ValueError, match="NNN_name"):
        discover(tmp_path)


def test_discover_rejects_duplicate_numbers(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("")
    (tmp_path / "0001_b.sql").write_text("")
    with pytest.raises(ValueError, match="two migrations"):
        discover(tmp_path)
