"""A fresh ledger per benchmark cell: a SQLite file, or a PostgreSQL database dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_ADMIN = os.environ.get("TIERWISE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_ledger(backend: str, tmp: Path) -> Iterator[str]:
    """The URL of an empty ledger of this backend, removed when the block ends."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}"
        return
    import psycopg

    name = f"tierwise_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
