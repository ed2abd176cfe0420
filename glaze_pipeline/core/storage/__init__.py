"""Postgres and Redis: servers, migrations, the cache, the paid-call ledger and the one writer of results."""
