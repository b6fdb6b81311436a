"""The ``seda`` command: ``serve``, ``migrate``, ``user create``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import trio
import trio_asyncio

from protocol.accounts import RegisterBody
from protocol.errors import ProtocolError
from server.auth import ROLES, hash_password
from server.cluster.supervisor import serve_workers
from server.collector import tune_for_serving
from server.config import FLAG_ENV_NAMES, ConfigError, Settings, flag_for, load_settings
from server.runtime import open_postgres, serve
from storage.embedded import DataDirBusy, EmbeddedPostgresError
from storage.migrations import migrate
from storage.users import Users

log = logging.getLogger("seda")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name.lower(), None) for name in FLAG_ENV_NAMES}
    return load_settings(overrides={k: str(v) for k, v in overrides.items() if v is not None})


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    for name in FLAG_ENV_NAMES:
        parser.add_argument(flag_for(name), dest=name.lower(), metavar=name, help=f"overrides ${name}")


async def _migrate(settings: Settings) -> None:
    async with trio_asyncio.open_loop(), open_postgres(settings) as db:
        applied = await migrate(db)
        print(f"applied migrations {applied}" if applied else "database is up to date")


async def _create_user(settings: Settings, body: RegisterBody, role: str) -> None:
    async with trio_asyncio.open_loop(), open_postgres(settings) as db:
        await migrate(db)
        user = await Users(db).create(
            email=body.email, username=body.username, password_hash=hash_password(body.password), role=role
        )
        print(f"created user {user.username} ({user.id}) with role {user.role}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seda", description="seda.fm room server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the REST API and the live server")
    _add_setting_flags(serve_cmd)
    migrate_cmd = commands.add_parser("migrate", help="apply pending migrations and exit")
    _add_setting_flags(migrate_cmd)
    user_cmd = commands.add_parser("user", help="manage users")
    user_sub = user_cmd.add_subparsers(dest="user_command", required=True)
    create = user_sub.add_parser("create", help="create a user (how the first admin comes to exist)")
    create.add_argument("--email", required=True)
    create.add_argument("--username", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--role", default="user", choices=sorted(ROLES))
    _add_setting_flags(create)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
    try:
        return _run(args)
    except BaseExceptionGroup as group:
        # The embedded Postgres starts inside the run's nurseries: its refusal comes wrapped.
        failure = _sole(group)
        if not isinstance(failure, EmbeddedPostgresError):
            raise
        print(f"seda: {failure}", file=sys.stderr)
        return 2


def _sole(error: BaseException) -> BaseException:
    """The one exception inside nested groups of one (or the group itself)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def _run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
        if args.command == "serve":
            tune_for_serving(settings.gc_gen0)
            if settings.workers > 1 and settings.parent_pid is None:
                trio.run(serve_workers, settings)
            else:
                trio.run(serve, settings)
        elif args.command == "migrate":
            trio.run(_migrate, settings)
        else:
            try:
                body = RegisterBody(email=args.email, username=args.username, password=args.password)
            except ValueError as exc:
                print(f"seda: {exc}", file=sys.stderr)
                return 2
            trio.run(_create_user, settings, body, args.role)
    except (ConfigError, DataDirBusy, EmbeddedPostgresError) as exc:
        print(f"seda: {exc}", file=sys.stderr)
        return 2
    except ProtocolError as exc:
        print(f"seda: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
