"""The SQLite store (default): one file in WAL mode, shared by the processes of one host.

A slice grows in one atomic INSERT ... SELECT (the cap check and the growth in one statement); a
group of bills is one transaction: the entries (one INSERT over the group as JSON, parsed by SQLite),
the hourly totals (summed from the rows that went in, one upsert), the stored answers and the
slices' rows shrunk by what the bills that went in cost; an attempt already billed is skipped and
shrinks nothing (a group retried after its commit is not counted twice). Each thread has its
own connection. The file is created 0600 (its -wal and -shm take its mode). A database error is
LedgerUnavailable; a write that breaks a unique key (other than a bill's: skipped) is DuplicateEntry.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from router._errors import ConfigError, LedgerError, LedgerUnavailable
from router.ledger._group import SLACK_SHARE, Bill, batch_json, slice_costs
from router.ledger._journal import Journal
from router.ledger._keys import KEYS_SQL
from router.ledger._labels import LABELS_SQLITE
from router.ledger._records import ENTRY_COLUMNS, ROLLUP_TABLE, SPEND_SQL, Entry, StoredAnswer, dumps, entry_select
from router.ledger._store import DuplicateEntry, Grant

_ENTRIES = """CREATE TABLE IF NOT EXISTS {name} (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    tier TEXT NOT NULL,
    model TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    cost_nanos INTEGER NOT NULL CHECK (cost_nanos >= 0),
    latency_s REAL NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    ts REAL NOT NULL,
    reservation TEXT,
    cached_in INTEGER NOT NULL DEFAULT 0,
    in_session INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant, request_id, attempt)
);"""
_SCHEMA = _ENTRIES.format(name="entries") + """
CREATE INDEX IF NOT EXISTS entries_tenant_ts ON entries (tenant, ts);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    amount_nanos INTEGER NOT NULL CHECK (amount_nanos >= 0),
    expires REAL NOT NULL,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS reservations_tenant ON reservations (tenant);
CREATE TABLE IF NOT EXISTS owners (id TEXT PRIMARY KEY, beat REAL NOT NULL);
CREATE TABLE IF NOT EXISTS response_cache (key TEXT PRIMARY KEY, tenant TEXT NOT NULL, response TEXT NOT NULL, route TEXT NOT NULL,
    cost TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS response_cache_tenant ON response_cache (tenant, created);
CREATE TABLE IF NOT EXISTS rates (tenant TEXT NOT NULL, minute INTEGER NOT NULL, requests INTEGER NOT NULL, PRIMARY KEY (tenant, minute));
CREATE TABLE IF NOT EXISTS counters (name TEXT NOT NULL, span INTEGER NOT NULL, used INTEGER NOT NULL, PRIMARY KEY (name, span));
CREATE TABLE IF NOT EXISTS sessions (tenant TEXT NOT NULL, session_id TEXT NOT NULL, level INTEGER NOT NULL, tier TEXT NOT NULL,
    updated REAL NOT NULL, PRIMARY KEY (tenant, session_id));
CREATE TABLE IF NOT EXISTS claims (
    tenant TEXT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint TEXT,
    status TEXT NOT NULL,
    owner TEXT,
    updated REAL NOT NULL,
    response TEXT,
    route TEXT,
    PRIMARY KEY (tenant, request_id)
);
"""


# Totals per tenant, hour, tier and model, kept in step with the entries by the transaction that
# inserts them (`write_batch`): budgets sum a period's hours, reports read whole hours here (and
# only the edge hours from the entries).
_ITEM = "json_extract(value, '$[{i}]')"
_SUMS = ("SUM(attempt = 1), SUM(outcome = 'ok'), SUM(tokens_in), SUM(tokens_out), SUM(CASE WHEN outcome = 'ok' THEN tokens_in ELSE 0 END),"
         " SUM(CASE WHEN outcome = 'ok' THEN tokens_out ELSE 0 END), SUM(cost_nanos)")
_ROLLUP = ROLLUP_TABLE.format(t="", int="INTEGER") + f"""
INSERT INTO spend_rollup SELECT tenant, CAST(ts / 3600 AS INTEGER), tier, model, COUNT(*), {_SUMS} FROM entries GROUP BY 1, 2, 3, 4;
DROP TRIGGER IF EXISTS entries_settle;
DROP TABLE IF EXISTS spend_hourly;
"""


class SQLiteStore:
    """The ledger's tables in one SQLite file; safe across threads and processes sharing the file.

    `:memory:` is a private file in a temporary directory, removed on close (SQLite's shared-cache
    memory databases lock whole tables under threads).
    """

    prefix = ""
    mark = "?"
    dbnow = "((julianday('now') - 2440587.5) * 86400.0)"
    minute = f"CAST({dbnow} / 60 AS INTEGER)"  # a cast cuts toward zero: the floor of a time after 1970
    # Its key's index would be read row by row with a lookup of each into the table: 1.5x the time.
    rollup_scan = "spend_rollup NOT INDEXED"
    spend_sql = SPEND_SQL.format(hour="CAST(ts / 3600 AS INTEGER)", table="entries", since=":since", until=":until", tenant=":tenant")

    def __init__(self, path: str, *, lock_timeout_s: float = 30.0, durability: str = "process") -> None:
        self._lock_timeout = lock_timeout_s
        self._durability = durability
        self._local = threading.local()
        self.name = path
        self._tmpdir: str | None = None
        if path == ":memory:":
            self._tmpdir = tempfile.mkdtemp(prefix="tierwise-ledger-")
            path = str(Path(self._tmpdir) / "ledger.db")
        parent = Path(path).expanduser().resolve().parent
        if not parent.is_dir():
            raise ConfigError(f"ledger directory {parent} does not exist")
        self._target = str(Path(path).expanduser())
        self.journal = Journal(Path(self._target + ".journal"))
        _private(self._target)
        try:
            self._conn().executescript(_SCHEMA + LABELS_SQLITE + KEYS_SQL.format(t="", real="REAL"))  # runs in its own transaction
            _migrate(self)
        except LedgerError as exc:
            raise ConfigError(f"cannot use ledger {self.name!r}: {exc} (is the file writable?)") from None
        try:  # groups of bills are written through SQLite's JSON functions (built in since 3.38)
            self._conn().execute("SELECT json_extract('[1]', '$[0]')")
        except sqlite3.Error:
            raise ConfigError(f"the ledger needs SQLite with its JSON functions; this Python has SQLite {sqlite3.sqlite_version}") from None

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self._target, timeout=self._lock_timeout, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode survives a killed process; only an OS crash can lose the last commits.
                # Durability "os": FULL syncs the WAL at each commit, so a committed bill survives a power loss.
                conn.execute(f"PRAGMA synchronous={'FULL' if self._durability == 'os' else 'NORMAL'}")
                conn.execute(f"PRAGMA busy_timeout={int(self._lock_timeout * 1000)}")
            except sqlite3.Error as exc:
                raise ConfigError(f"cannot open ledger {self.name!r}: {exc}") from None
            self._local.conn = conn
        return conn

    def query(self, sql: str, params: Any = (), fetch: str = "") -> Any:
        with _driver_errors():
            cursor = self._conn().execute(sql, params)
            return cursor.fetchone() if fetch == "one" else cursor.fetchall() if fetch == "all" else cursor.rowcount

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so concurrent writers queue instead of deadlocking."""
        with _driver_errors():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    _SPENT = "(SELECT COALESCE(SUM(nanos), 0) FROM spend_rollup WHERE tenant = :t AND hour >= :h)"
    # An owner's hold counts until it is given back or its bills are replayed, alive or dead (a dead
    # owner's may hide answers it billed); a hold of a version without owners counts until it expires.
    _HELD = "(SELECT COALESCE(SUM(amount_nanos), 0) FROM reservations WHERE tenant = :t AND (owner IS NOT NULL OR expires > :now))"
    _PRESUMED = ("(SELECT COALESCE(SUM(r.amount_nanos), 0) FROM reservations r LEFT JOIN owners o ON o.id = r.owner"
                 f" WHERE r.tenant = :t AND r.owner IS NOT NULL AND (o.beat IS NULL OR o.beat <= {dbnow} - :timeout))")

    def state_row(self, tenant: str, hour: int, now: float, owner_timeout_s: float) -> tuple[int, int, int]:
        row = self.query(f"SELECT {self._SPENT}, {self._HELD}, {self._PRESUMED}",
                         {"t": tenant, "h": hour, "now": now, "timeout": owner_timeout_s}, "one")
        return int(row[0]), int(row[1]), int(row[2])

    def grant(self, g: Grant) -> int | None:
        # One statement: the check and the growth are atomic, so instances can never pass the cap together.
        row = self.query(
            "INSERT INTO reservations (id, tenant, request_id, amount_nanos, expires, owner)"
            f" SELECT :id, :t, :rq, :need + (CASE WHEN :extra * {SLACK_SHARE} <= :cap - s - h - :need THEN :extra ELSE 0 END), :exp, :owner"
            f" FROM (SELECT {self._SPENT} AS s, {self._HELD} AS h) WHERE s + h + :need <= :cap"
            " ON CONFLICT (id) DO UPDATE SET amount_nanos = amount_nanos + excluded.amount_nanos, expires = excluded.expires"
            " RETURNING amount_nanos",
            {"id": g.slice_id, "t": g.tenant, "rq": g.request_id, "need": g.need, "extra": g.extra, "exp": g.expires, "now": g.now,
             "owner": g.owner, "h": g.hour, "cap": g.cap},
            "one",
        )
        return None if row is None else int(row[0])

    # A group's entries in one statement over one JSON parameter: SQLite parses the batch in C with
    # the GIL released once, not once a row. An attempt already billed (a replay got there first) is
    # skipped; the hourly totals then add exactly the rows that went in (their ids follow `before`).
    _INSERT = (f"INSERT INTO entries ({ENTRY_COLUMNS}) SELECT {entry_select(dict.fromkeys(('str', 'int', 'float'), _ITEM))}"
               " FROM json_each(?) WHERE true ON CONFLICT (tenant, request_id, attempt) DO NOTHING")
    _ANSWER = "UPDATE claims SET status = 'done', updated = ?, response = ?, route = ? WHERE tenant = ? AND request_id = ?"

    def write_batch(self, bills: list[Bill], shrink: dict[str, int], expires: float) -> None:
        batch = batch_json(bills)
        with self.tx() as conn:
            before = conn.execute("SELECT COALESCE(MAX(id), 0) FROM entries").fetchone()[0]
            went_in = conn.execute(self._INSERT, (batch,)).rowcount
            conn.execute(_ROLLUP_ADD, (before,))
            if answers := [_answer(b.ts, b.entry, b.answer) for b in bills if b.answer is not None]:
                conn.executemany(self._ANSWER, answers)
            if went_in < len(bills):  # some were billed already: only the bills that went in shrink their slices
                new = set(conn.execute("SELECT tenant, request_id, attempt FROM entries WHERE id > ?", (before,)).fetchall())
                bills = [b for b in bills if (b.entry.tenant, b.entry.request_id, b.entry.attempt) in new]
            shrink = slice_costs(bills, shrink)
            if shrink:
                conn.executemany("UPDATE reservations SET amount_nanos = amount_nanos - ?, expires = ? WHERE id = ?",
                                 [(cost, expires, slice_id) for slice_id, cost in shrink.items()])

    def claim(self, tenant: str, request_id: str, row_sql: str, decide: Callable[[Any], bool], owner: str, now: float,
              fingerprint: str | None) -> tuple[bool, Any]:
        with self.tx() as conn:
            row = conn.execute(row_sql, (tenant, request_id)).fetchone()
            if not decide(row):
                return False, row
            conn.execute("INSERT OR REPLACE INTO claims (tenant, request_id, fingerprint, status, owner, updated)"
                         " VALUES (?, ?, ?, 'pending', ?, ?)", (tenant, request_id, fingerprint, owner, now))
            return True, row

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def _migrate(store: SQLiteStore) -> None:
    """Ledgers made by older versions: the hourly totals, bills unique per tenant, holds with owners."""
    conn = store._conn()
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'spend_rollup'").fetchone() is None:
        try:  # the rollup, filled from the entries of a ledger made before it, in one transaction
            conn.executescript("BEGIN IMMEDIATE;" + _ROLLUP + "COMMIT;")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if "already exists" not in str(exc):  # else another process made it first: fine
                raise LedgerUnavailable(f"SQLite: {exc}") from None
    _add_column(store, "entries", "cached_in", "INTEGER NOT NULL DEFAULT 0")  # before the rekey, which copies every column
    _add_column(store, "entries", "in_session", "INTEGER NOT NULL DEFAULT 0")
    _rekey_entries(store)
    _add_column(store, "reservations", "owner", "TEXT")  # ledgers made before holds had owners


def _add_column(store: SQLiteStore, table: str, column: str, kind: str) -> None:
    """A column that ledgers of older versions lack (another process adding it first is fine)."""
    if column in {row[1] for row in store.query(f"PRAGMA table_info({table})", fetch="all")}:
        return
    try:
        store.query(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    except LedgerError as exc:
        if "duplicate column" not in str(exc):
            raise


def _rekey_entries(store: SQLiteStore) -> None:
    """Ledgers made when bills were unique per request id alone (a tenant could block another's
    bill): the table is rebuilt once, unique per tenant, request id and attempt."""
    old = "UNIQUE (request_id, attempt)"
    if old not in (store.query("SELECT sql FROM sqlite_master WHERE name = 'entries'", fetch="one") or [""])[0]:
        return
    with store.tx() as tx:
        if old not in tx.execute("SELECT sql FROM sqlite_master WHERE name = 'entries'").fetchone()[0]:
            return  # another process rebuilt it first
        tx.execute(_ENTRIES.format(name="entries_rekeyed"))
        tx.execute(f"INSERT INTO entries_rekeyed (id, {ENTRY_COLUMNS}) SELECT id, {ENTRY_COLUMNS} FROM entries")
        tx.execute("DROP TABLE entries")
        tx.execute("ALTER TABLE entries_rekeyed RENAME TO entries")
        tx.execute("CREATE INDEX IF NOT EXISTS entries_tenant_ts ON entries (tenant, ts)")


def _private(path: str) -> None:
    """Create the ledger file readable by its owner alone (it holds stored answers): SQLite gives
    its -wal and -shm files the database file's mode. An existing file keeps the mode it has."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create ledger {path!r}: {exc.strerror}") from None


_ROLLUP_ADD = (
    f"INSERT INTO spend_rollup SELECT tenant, CAST(ts / 3600 AS INTEGER), tier, model, COUNT(*), {_SUMS} FROM entries WHERE id > ?"
    " GROUP BY 1, 2, 3, 4 ON CONFLICT (tenant, hour, tier, model) DO UPDATE SET"
    " attempts = attempts + excluded.attempts, requests = requests + excluded.requests, answers = answers + excluded.answers,"
    " tokens_in = tokens_in + excluded.tokens_in, tokens_out = tokens_out + excluded.tokens_out,"
    " answer_tokens_in = answer_tokens_in + excluded.answer_tokens_in, answer_tokens_out = answer_tokens_out + excluded.answer_tokens_out,"
    " nanos = nanos + excluded.nanos"
)


def _answer(ts: float, entry: Entry, answer: StoredAnswer) -> tuple[Any, ...]:
    return (ts, dumps(answer.response), dumps(answer.route), entry.tenant, entry.request_id)


@contextmanager
def _driver_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc):
            raise DuplicateEntry(str(exc)) from None
        raise LedgerError(f"the ledger refused a write: {exc}") from None
    except sqlite3.Error as exc:
        raise LedgerUnavailable(f"SQLite: {exc}") from None
