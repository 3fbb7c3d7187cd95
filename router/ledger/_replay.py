"""Bills left on file by instances that stopped: their outboxes (this host's, or one copied from
another host) and the journal older versions wrote when a bill could not go in.

An outbox is replayed only once its owner is gone (the owner holds the file's lock for life): its
bills go in, each hold it had in flight is billed at the hold (the call may have been answered and
charged), and then the owner's reservation rows are deleted. Entries are unique per tenant,
request id and attempt, so replaying twice, or from two processes at once, bills nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from router._errors import LedgerError
from router.ledger._group import Bill
from router.ledger._journal import Journal
from router.ledger._records import Entry, Reservation, StoredAnswer, bill_nanos
from router.ledger._store import DuplicateEntry, Store, render

_log = logging.getLogger("tierwise")


class Replays:
    """Commits what stopped owners left: outboxes named `<prefix>-<owner>.jsonl`, and the journal."""

    def __init__(self, store: Store, forget_dead: Callable[[str], None], clock: Callable[[], float], prefix: str, own: Path) -> None:
        self._store = store
        self._forget_dead = forget_dead
        self._clock = clock
        self._prefix = Path(prefix)
        self._own = own.name

    def reap(self) -> None:
        """Commit the outboxes of this host's instances that stopped."""
        for path in self._prefix.parent.glob(self._prefix.name + "-*.jsonl"):
            if path.name != self._own:
                self.outbox(path)

    def outbox(self, path: Path) -> int | None:
        """Commit a stopped instance's outbox file: the number of bills, or None when its owner lives."""
        owner = path.name.rsplit("-", 1)[-1].removesuffix(".jsonl")
        now = self._clock()
        try:
            done = Journal(path).drain(lambda bills: self._store.write_batch(bills, {}, now), lambda: self._forget_dead(owner))
        except (LedgerError, OSError) as exc:
            _log.warning("tierwise: cannot replay the outbox %s: %s", path, exc)
            return None
        if done is not None:
            _log.info("tierwise: committed %d bills a stopped instance left in %s", done, path)
        return done

    def journal(self, journal: Journal) -> None:
        """Bills a failed write left in the journal of earlier versions, one by one."""
        try:
            done = journal.replay(self._insert, lambda exc: isinstance(exc, DuplicateEntry))
        except OSError as exc:
            _log.warning("tierwise: cannot replay the ledger journal %s: %s", journal.path, exc)
            return
        if done:
            _log.info("tierwise: replayed %d journalled bills into the ledger", done)

    def _insert(self, reservation: Reservation | None, entry: Entry, answer: StoredAnswer | None) -> None:
        self._store.write_batch([Bill(entry, answer, bill_nanos(entry.cost_usd), None, entry.ts)], {}, 0.0)
        if reservation is not None:
            self._store.query(render(self._store, "DELETE FROM {t}reservations WHERE id = ?"), (reservation.id,))
