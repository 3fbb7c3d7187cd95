"""Files of bills to bring into the database: a stopped instance's outbox (drained in batches), and
the journal older versions wrote when a bill could not go in (replayed one by one when a ledger
opens). An entry already in the database is skipped (entries are unique by request id and
attempt), so replaying twice, or from two processes at once, bills nothing twice.
"""

from __future__ import annotations

import fcntl
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from router.ledger._group import Bill
from router.ledger._records import Entry, Reservation, StoredAnswer, entry_from_dict, to_nanos

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

    def drain(self, write: Callable[[list[Bill]], None], chunk: int = 4096) -> int | None:
        """Commit a stopped instance's outbox through `write` (a batch a transaction), then remove
        it; the number of bills, or None while its owner lives (it holds the file's lock for life).
        Bills already in the database are skipped by `write`."""
        with self._locked(wait=False) as lines:
            if lines is None:
                return None
            bills = []
            for line in lines:
                try:
                    _, entry, answer = _parse(line)
                except (ValueError, KeyError, TypeError) as exc:  # a line cut short: there is no bill in it
                    _log.warning("tierwise: skipped an unreadable line of %s: %s", self.path, exc)
                    continue
                bills.append(Bill(entry, answer, to_nanos(entry.cost_usd), None, entry.ts))
            for start in range(0, len(bills), chunk):
                write(bills[start : start + chunk])
            self.path.unlink()
        return len(bills)

    @contextmanager
    def _locked(self, wait: bool = True) -> Iterator[list[str] | None]:
        with open(self.path, "a+", encoding="utf-8") as fh:
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


def _parse(line: str) -> tuple[Reservation | None, Entry, StoredAnswer | None]:
    data: Any = json.loads(line)
    if isinstance(data, list):  # an outbox line: [1, the entry's fields in order, the answer]
        answer = data[13]
        entry = Entry(data[1], data[2], data[3], data[4], data[5], data[6], data[7], Decimal(data[8]), data[9], data[10], data[11], data[12])
        return None, entry, None if answer is None else StoredAnswer(answer["response"], answer["route"])
    res = data.get("reservation")
    reservation = None if res is None else Reservation(res["id"], res["tenant"], res["request_id"], Decimal(res["amount_usd"]))
    answer = data.get("answer")
    return reservation, entry_from_dict(data["entry"]), None if answer is None else StoredAnswer(answer["response"], answer["route"])
