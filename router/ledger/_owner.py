"""The owner of an open ledger: its heartbeat, and what dead owners left behind.

Holds and request-id claims belong to an owner (one per open ledger) that beats every few seconds
on the database's clock. A process that dies stops beating: within `timeout_s` its claims are free
to take again, and its holds count as *presumed* spent until its outbox is replayed (the bills it
made and the calls it had in flight, see `Replays`) or an operator releases them.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from router._errors import LedgerError
from router.ledger._records import from_nanos
from router.ledger._store import Store, render

BEAT_S = 5.0
OWNER_TIMEOUT_S = 20.0  # four missed beats: the owner is gone, its claims are free and its holds presumed spent
_log = logging.getLogger("tierwise")


SKEW_WARN_S = 2.0  # a host clock further than this off the server's is said once


class ServerClock:
    """This host's clock set to the database server's, for a ledger that hosts share: every instance
    then dates its bills and finds its budget periods on one clock, so a host whose clock is a day
    ahead cannot start tomorrow's budget today. Measured at every heartbeat (half a round trip off
    at worst)."""

    def __init__(self, local: Callable[[], float] | None = None) -> None:
        self._local = local or (lambda: time.time())  # looked up at each call: the host's clock as it is now
        self._offset = 0.0
        self._said = False

    def __call__(self) -> float:
        return self._local() + self._offset

    def measure(self, read_server: Callable[[], float]) -> None:
        sent = self._local()
        server = read_server()
        self._offset = server - (sent + self._local()) / 2
        if abs(self._offset) > SKEW_WARN_S and not self._said:
            self._said = True
            _log.warning("tierwise: this host's clock is %.1f s off the ledger server's; the ledger keeps the server's time", -self._offset)


class Owner:
    """One open ledger's identity and heartbeat; the only writer of the owners table."""

    def __init__(self, store: Store, clock: Callable[[], float], timeout_s: float = OWNER_TIMEOUT_S) -> None:
        self.id = uuid.uuid4().hex
        self.timeout_s = timeout_s
        self._beat_s = min(BEAT_S, timeout_s / 4)
        self._store = store
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _q(self, text: str, params: Any = (), fetch: str = "") -> Any:
        return self._store.query(render(self._store, text), params, fetch)

    def live_sql(self, alias: str) -> str:
        """SQL true when the owner joined as `alias` beat within the timeout, by the database's clock."""
        return f"{alias}.beat > {self._store.dbnow} - {float(self.timeout_s)!r}"

    def beat(self) -> None:
        """Say this owner lives (the first beat also proves the ledger is writable); a server clock
        is set by the time the server wrote."""
        sql = "INSERT INTO {t}owners (id, beat) VALUES (?, {dbnow}) ON CONFLICT (id) DO UPDATE SET beat = excluded.beat"
        if isinstance(self._clock, ServerClock):
            self._clock.measure(lambda: float(self._q(sql + " RETURNING beat", (self.id,), "one")[0]))
        else:
            self._q(sql, (self.id,))

    def start(self, upkeep: Callable[[], None]) -> None:
        """Beat every few seconds on a daemon thread, then run `upkeep` (replays of stopped owners)."""
        self._thread = threading.Thread(target=self._loop, args=(upkeep,), name="tierwise-ledger-owner", daemon=True)
        self._thread.start()

    def _loop(self, upkeep: Callable[[], None]) -> None:
        while not self._stop.wait(self._beat_s):
            try:
                self.beat()
                # Only holds of versions without owners expire: an owner's rows count until it gives
                # them back, or, once it is dead, until its bills are replayed.
                self._q("DELETE FROM {t}reservations WHERE owner IS NULL AND expires <= ?", (self._clock(),))
                upkeep()
            except LedgerError as exc:  # the database is away: requests will say so
                _log.warning("tierwise: ledger heartbeat failed: %s", exc)

    def stop(self) -> None:
        """Stop beating and leave the owners table (its holds were given back before)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
            try:
                self._q("DELETE FROM {t}owners WHERE id = ?", (self.id,))
            except LedgerError:
                pass

    def presumed_holds(self) -> list[tuple[str, str, Decimal, float | None]]:
        """(owner, tenant, amount, seconds since its last beat or None) for each dead owner's holds:
        money counted as spent until its outbox is replayed or released."""
        rows = self._q(
            "SELECT r.owner, r.tenant, SUM(r.amount_nanos), {dbnow} - MAX(o.beat) FROM {t}reservations r LEFT JOIN {t}owners o"
            f" ON o.id = r.owner WHERE r.owner IS NOT NULL AND (o.beat IS NULL OR NOT ({self.live_sql('o')}))"
            " GROUP BY r.owner, r.tenant ORDER BY r.tenant, r.owner", (), "all")
        return [(str(o), str(t), from_nanos(int(n)), None if age is None else float(age)) for o, t, n, age in rows]

    def release_presumed(self, owner: str | None = None) -> int:
        """Drop dead owners' holds (one owner's, or all) without their bills: for an operator who
        knows that outbox is lost. The rows released."""
        released = 0
        for dead in {o for o, _, _, _ in self.presumed_holds() if owner in (None, o)}:
            released += int(self._q("DELETE FROM {t}reservations WHERE owner = ?", (dead,)))
            self._q("DELETE FROM {t}owners WHERE id = ?", (dead,))
        return released

    def forget_dead(self, owner: str) -> None:
        """A stopped owner whose outbox is committed: its rows hold nothing more."""
        self._q("DELETE FROM {t}reservations WHERE owner = ?", (owner,))
        self._q("DELETE FROM {t}owners WHERE id = ?", (owner,))
