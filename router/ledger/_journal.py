"""Files of bills to bring into the database: a stopped instance's outbox (drained in batches), and
the journal older versions wrote when a bill could not go in (replayed one by one when a ledger
opens). An entry already in the database is skipped (entries are unique by request id and
attempt), so replaying twice, or from two processes at once, bills nothing twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from router.ledger._group import Bill
from router.ledger._records import Entry, Reservation, StoredAnswer, bill_nanos, entry_from_dict, entry_from_json, from_nanos

_log = logging.getLogger("tierwise")
Insert = Callable[[Reservation | None, Entry, StoredAnswer | None], None]


class Journal:
    """JSON lines beside the ledger; replayed under an exclusive file lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def replay(self, insert: Insert, is_duplicate: Callable[[BaseException], bool]) -> int:
        """Insert every journalled bill; returns how many went in. Lines that fail stay for later."""
        if not self.pending():
            return 0
        done, kept = 0, []
        with self._locked() as lines:
            assert lines is not None  # a blocking lock
            for line in lines:
                try:
                    reservation, entry, answer = _parse(line)
                    insert(reservation, entry, answer)
                    done += 1
                except Exception as exc:  # noqa: BLE001 - a line that fails now is kept, not lost
                    if not is_duplicate(exc):
                        kept.append(line)
            self.path.write_text("".join(kept), encoding="utf-8")
        return done

    def drain(self, write: Callable[[list[Bill]], None], done: Callable[[], None] = lambda: None, chunk: int = 4096) -> int | None:
        """Commit a stopped instance's outbox through `write` (a batch a transaction), call `done`,
        then remove it; the number of bills, or None while its owner lives (it holds the file's lock
        for life). Bills already in the database are skipped by `write`, so a second drain is harmless."""
        with self._locked(wait=False) as lines:
            if lines is None:
                return None
            bills, holds = [], {}
            for line in lines:
                try:
                    data: Any = json.loads(line)
                    if isinstance(data, list) and data[0] == 2:  # a hold in flight
                        holds[data[1]] = data
                        continue
                    _, entry, answer = _parse(line)
                except (ValueError, KeyError, TypeError, IndexError) as exc:  # a line cut short: there is no bill in it
                    _log.warning("tierwise: skipped an unreadable line of %s: %s", self.path, exc)
                    continue
                hold = data[2 + _fields(data)] if isinstance(data, list) and len(data) > 2 + _fields(data) else ""
                holds.pop(hold, None)
                bills.append(Bill(entry, answer, bill_nanos(entry.cost_usd), None, entry.ts, hold))
            bills += [presumed(h) for h in holds.values()]
            for start in range(0, len(bills), chunk):
                write(bills[start : start + chunk])
            done()
            self.path.unlink()
        return len(bills)

    @contextmanager
    def _locked(self, wait: bool = True) -> Iterator[list[str] | None]:
        with open(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+", encoding="utf-8") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))  # one replayer at a time, across processes
            except BlockingIOError:
                yield None
                return
            try:
                fh.seek(0)
                text = fh.read().split("\0", 1)[0]  # an outbox ends at its first NUL byte
                yield [line for line in text.splitlines(keepends=True) if line.strip()]
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


_OLD_FIELDS = 12  # an Entry's fields in the outbox lines of versions before cached_in


def _fields(line: list[Any]) -> int:
    """How many entry fields an outbox line holds: [1, fields..., answer, hold] since cached_in (13
    fields), in_session (14) and in newer versions with more (this one reads the fields it knows and
    leaves the later ones at their defaults: an instance of either version on the host replays the
    other's file); versions before cached_in wrote 12 fields, with a hold or without one."""
    return len(line) - 3 if len(line) >= 3 + _OLD_FIELDS + 1 else _OLD_FIELDS


def presumed(hold: list[Any]) -> Bill:
    """The bill of a hold whose process died with its call in flight: the worst case it held, since
    the provider may have answered (and charged) after the last line was written."""
    _, hold_id, tenant, request_id, nanos, ts = hold
    attempt = -1 - int(hashlib.sha256(str(hold_id).encode()).hexdigest()[:7], 16)  # apart from real attempts, the same on every replay
    reason = f"the instance died with this call in flight: billed its hold (the worst case), hold {hold_id}"
    entry = Entry(str(request_id), attempt, str(tenant), "presumed", "unknown", 0, 0, from_nanos(int(nanos)), 0.0, "presumed", reason, float(ts))
    return Bill(entry, None, int(nanos), None, float(ts))


def _parse(line: str) -> tuple[Reservation | None, Entry, StoredAnswer | None]:
    data: Any = json.loads(line)
    if isinstance(data, list):  # an outbox line: [1, the entry's fields in order, the answer]
        fields = _fields(data)
        answer = data[1 + fields]
        entry = entry_from_json(data[1 : 1 + fields])
        return None, entry, None if answer is None else StoredAnswer(answer["response"], answer["route"])
    res = data.get("reservation")
    reservation = None if res is None else Reservation(res["id"], res["tenant"], res["request_id"], Decimal(res["amount_usd"]))
    answer = data.get("answer")
    return reservation, entry_from_dict(data["entry"]), None if answer is None else StoredAnswer(answer["response"], answer["route"])
