"""Postgres: the asyncpg bridge, migrations, repositories and the journal writer.

This is the only package that knows asyncpg runs on asyncio (via trio-asyncio);
everything above it sees trio-native coroutines.
"""
