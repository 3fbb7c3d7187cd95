"""The committer: when the books' queued bills go into the database.

What is durable when: a hold is in the database before the call it pays for is made. A bill is
appended to this instance's outbox file before `settle` returns (it survives the process being
killed, like SQLite's own commits in WAL mode with synchronous=NORMAL), and is committed by the
commit thread with the others queued within `flush_s` (50 ms by default). A bill that carries a
request id's answer, one near the cap, or any bill when `flush_s` is 0, is committed before
`settle` returns: group commit with waiters, so concurrent settles share one transaction. With
durability "os" the outbox is synced (msync) once per group, before its transaction, and while the
database is away: a power loss can take only bills younger than `flush_s`.
"""

from __future__ import annotations

import logging
import threading
import time

from router._errors import LedgerError
from router.ledger._books import Books

_log = logging.getLogger("tierwise")
FLUSH_S = 0.05
_COMMIT_TRIES = 3
_TIDY_S = 0.1
_AWAIT_S = 2.0  # a settle that waits for its commit gives up after this (the bill stays queued and on file)


class Committer:
    """The commit thread and the settles that wait for their group; owns its condition and locks."""

    def __init__(self, books: Books, flush_s: float = FLUSH_S, sync_os: bool = False) -> None:
        self._books = books
        self._flush_s = flush_s
        self._sync_os = sync_os
        self._done = threading.Condition()
        self._done_seq = 0  # every bill up to this sequence number is committed
        self._leading = False  # a settle commits the queued group for the others waiting
        self._flush_lock = threading.Lock()
        self._urgent = threading.Event()  # wakes the commit thread early (closing)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tierwise-ledger-commit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def must_wait(self, urgent: bool) -> bool:
        """Whether a bill just queued is committed before its settle returns: when it is urgent or `flush_s` is 0."""
        return urgent or self._flush_s == 0

    def await_commit(self, seq: int) -> None:
        """Return once bill `seq` is committed. The first waiter leads and commits everything queued
        in one transaction while the others wait for it; a failing database keeps the bill queued
        (and on file) for later."""
        deadline = time.monotonic() + _AWAIT_S
        while True:
            with self._done:
                while self._leading and self._done_seq < seq and time.monotonic() < deadline:
                    self._done.wait(deadline - time.monotonic())
                if self._done_seq >= seq:
                    return
                if self._leading:  # the leader's commit is late
                    _log.warning("tierwise: ledger commit is late; the bill is kept in %s and retried", self._books.outbox.path)
                    return
                self._leading = True
            try:
                self.flush_or_keep()
            finally:
                with self._done:
                    self._leading = False
                    self._done.notify_all()
            if self._done_seq < seq:  # the database refused the group: the bill waits in the outbox
                return

    def flush_or_keep(self) -> None:
        """Flush, retried a few times; a database that stays away keeps the bills on file."""
        for attempt in range(_COMMIT_TRIES):
            try:
                self.flush()
                return
            except LedgerError as exc:
                if attempt == _COMMIT_TRIES - 1:
                    _log.warning("tierwise: ledger write failed (%s); the bill is kept in %s and retried", exc, self._books.outbox.path)
                    return
                time.sleep(0.05 * 4**attempt)

    def flush(self) -> None:
        """Commit every queued bill now (reports and `close` call this)."""
        with self._flush_lock:
            while (seq := self._books.write_group()) is not None:
                with self._done:
                    self._done_seq = max(self._done_seq, seq)
                    self._done.notify_all()
            self._books.outbox.committed()

    def _loop(self) -> None:
        fails = 0
        while not self._stop.is_set():
            if self._books.outbox.ready.wait(_TIDY_S):
                # Linger: let the batch fill. With flush_s 0 the settles commit their own groups; this
                # thread only picks up what a failing database left.
                self._urgent.wait(self._flush_s or FLUSH_S)
                self._urgent.clear()
                if self._stop.is_set():
                    break
                try:
                    self.flush()
                    fails = 0
                except LedgerError as exc:
                    fails += 1
                    _log.warning("tierwise: ledger commit failed (%s); %d bills wait in %s", exc, len(self._books.outbox),
                                 self._books.outbox.path)
                    self._back_off(min(2.0, 0.05 * 2**fails))
            try:
                self._books.tidy(_TIDY_S)
            except LedgerError as exc:
                _log.warning("tierwise: ledger upkeep failed: %s", exc)

    def _back_off(self, seconds: float) -> None:
        """Wait before the next try at a failing database; with durability "os" the bills that keep
        coming are still synced every flush_s meanwhile."""
        step = (self._flush_s or FLUSH_S) if self._sync_os else seconds
        end = time.monotonic() + seconds
        while not self._stop.wait(min(step, max(0.0, end - time.monotonic()))) and time.monotonic() < end:
            self._books.outbox.sync()

    def close(self) -> None:
        """Stop the thread, commit what is queued and give every slice back; a bill that cannot go
        in stays in the outbox file for a replay. Settles still waiting are woken."""
        self._stop.set()
        self._urgent.set()
        self._books.outbox.ready.set()  # the thread may be waiting for bills: it sees the stop at once
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush_or_keep()
        try:
            self._books.give_back_all()
        except LedgerError:
            pass  # its rows lapse with this owner's heartbeat
        self._books.outbox.close()
        with self._done:
            self._done.notify_all()
