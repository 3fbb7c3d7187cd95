"""Group commit: budget slices held per instance, and bills queued for one transaction per batch.

A capped tenant's holds come out of a *slice*: one row in the reservations table that this
instance holds and grows in one atomic statement when a hold does not fit in it. A hold that fits
is taken in memory, so writers of one tenant do not queue on a database lock. A settled bill goes
to this instance's outbox (one line appended to a local file, which survives the process being
killed) and into a queue that one transaction commits, with the slices shrunk by what was billed:
the money stays held until it is spent, so no cap is ever passed on the way.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import mmap
import os
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from router.ledger._records import Entry, StoredAnswer, entry_json, storable, unstorable

_quote = json.encoder.encode_basestring_ascii
SLACK_HOLDS = 32  # a slice grows by this many of the hold that asked, ...
SLACK_SHARE = 8  # ... when that is at most this fraction of what the tenant has left; else by none
RECENT_BILLS = 16_384  # attempts remembered to refuse a second bill at once


@dataclass
class Bill:
    """One settled attempt waiting for the group commit."""

    entry: Entry  # its ts may be 0: `ts` is when it was billed
    answer: StoredAnswer | None
    cost: int  # nano-dollars
    slice_id: str | None  # the slice its hold came out of
    ts: float
    hold: str = ""  # the hold it settles, crossed off the outbox's holds in flight
    seq: int = 0  # its place in the outbox's queue: a commit of seq n holds every bill up to n
    json: str = ""  # entry_json of its entry, as its outbox line has it (written once, read by the commit)
    retried: bool = False  # put back after a failed write, which may have committed with its answer lost


def batch_json(bills: list[Bill], slices: bool = False) -> str:
    """The bills as one JSON array for one INSERT ... SELECT (see `entry_select`): each bill's
    entry items with its cost in nano-dollars appended, and (`slices`) its slice's id or null."""
    return "[" + ",".join([f"[{b.json or entry_json(storable(b.entry), b.ts)},{b.cost}{_slice(b.slice_id) if slices else ''}]"
                           for b in bills]) + "]"


def slice_costs(bills: list[Bill], plus: dict[str, int] | None = None) -> dict[str, int]:
    """What the bills cost, per slice they came out of (added to `plus`, e.g. unused parts given back)."""
    costs = dict(plus or {})
    for bill in bills:
        if bill.slice_id is not None:
            costs[bill.slice_id] = costs.get(bill.slice_id, 0) + bill.cost
    return costs


def _slice(slice_id: str | None) -> str:
    return ",null" if slice_id is None else "," + _quote(slice_id)


@dataclass
class Slice:
    """What this instance holds for one tenant: `size` nano-dollars in the database, of which `used`
    covers holds in flight and bills not yet committed."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    size: int = 0
    used: int = 0
    last_use: float = 0.0
    tight: bool = False  # near the cap: what is not in use goes back at every commit


class Slices:
    """This instance's slices and the holds taken from them, in memory. Every method takes the one
    lock it needs itself; the caller that changes our rows in the database keeps a slice's size
    equal to its row's amount by telling `grown`, `trim` and `committed` what it wrote."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_tenant: dict[str, Slice] = {}
        self._by_id: dict[str, Slice] = {}  # the same slices by id: a settle finds its slice without a scan
        self._holds: dict[str, tuple[str, int]] = {}  # hold id -> (tenant, nanos)
        self._serial = itertools.count()

    def take(self, tenant: str, amount: int, now: float) -> str | None:
        """A hold id when the tenant's slice has room for `amount`, else None."""
        with self._lock:
            s = self._by_tenant.get(tenant)
            if s is None or s.size - s.used < amount:
                return None
            s.used += amount
            s.last_use = now
            hold = f"{s.id}.{next(self._serial)}"
            self._holds[hold] = (tenant, amount)
            return hold

    def shortfall(self, tenant: str, amount: int) -> tuple[str, int]:
        """The tenant's slice id (made if new) and how much it must grow for `amount` to fit."""
        with self._lock:
            s = self._by_tenant.get(tenant)
            if s is None:
                s = self._by_tenant[tenant] = Slice()
                self._by_id[s.id] = s
            return s.id, max(0, s.used + amount - s.size)

    def grown(self, tenant: str, size: int, need: int, slack: int) -> None:
        """The slice's row now holds `size`: tight (near the cap) when it grew by less than `slack` past `need`."""
        with self._lock:
            s = self._by_tenant[tenant]
            s.size, s.tight = size, size - s.size - need < slack

    def release(self, hold: str, cost: int) -> tuple[str, bool] | None:
        """A hold settled for `cost` (at most its amount): the slice keeps the cost until it is
        committed. (The slice's id, whether it is tight), or None for a hold not this instance's."""
        with self._lock:
            found = self._holds.pop(hold, None)
            if found is None:
                return None
            s = self._by_tenant.get(found[0])
            if s is None:
                return None
            s.used += min(cost, found[1]) - found[1]
            return s.id, s.tight

    def tighten(self, tenant: str) -> bool:
        """A bill the tenant's slice did not hold: its slack is no longer free money."""
        with self._lock:
            s = self._by_tenant.get(tenant)
            if s is not None:
                s.tight = True
            return s is not None

    def trim(self) -> dict[str, int]:
        """Take the unused part out of tight slices (before their rows shrink by as much)."""
        freed = {}
        with self._lock:
            for s in self._by_tenant.values():
                if s.tight and s.size > s.used:
                    freed[s.id], s.size = s.size - s.used, s.used
        return freed

    def committed(self, costs: dict[str, int]) -> None:
        """Bills went in and each slice's row shrank by what they cost."""
        with self._lock:
            for slice_id, cost in costs.items():
                s = self._by_id.get(slice_id)
                if s is not None:  # a slice with uncommitted bills is never dropped: always found
                    s.size -= cost
                    s.used -= cost

    def forget(self, slice_id: str, cost: int) -> None:
        """A released hold whose bill was refused: its cost will never be committed."""
        with self._lock:
            s = self._by_id.get(slice_id)
            if s is not None:
                s.used -= cost

    def free(self, tenant: str) -> tuple[str | None, int]:
        """The tenant's slice id and its part that no hold or uncommitted bill uses."""
        with self._lock:
            s = self._by_tenant.get(tenant)
            return (None, 0) if s is None else (s.id, s.size - s.used)

    def drop_idle(self, before: float) -> list[str]:
        """Slices with nothing in flight or uncommitted, unused since `before`, forgotten here so
        that no hold comes out of them while their rows are given back: their ids."""
        with self._lock:
            idle = [(t, s) for t, s in self._by_tenant.items() if s.used == 0 and s.last_use < before]
            for t, s in idle:
                del self._by_tenant[t]
                del self._by_id[s.id]
            return [s.id for _, s in idle]

    def ids(self) -> list[str]:
        with self._lock:
            return [s.id for s in self._by_tenant.values()]


class Outbox:
    """Bills settled but not yet committed: in memory for the writer, and appended to this owner's
    file so that a killed process loses none (an instance on the same host replays the file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._queue: list[Bill] = []
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._end = 0  # where the next line goes; a NUL byte marks the end of what is pending
        self._seq = 0
        self._recent: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._open: dict[str, bytes] = {}  # holds in flight: their lines, written again when the file is emptied
        self.ready = threading.Event()

    def hold(self, hold: str, tenant: str, request_id: str, nanos: int, ts: float) -> None:
        """Note a hold in flight: if this process dies before its bill, the hold is billed as spent."""
        line = f"[2,{_quote(hold)},{_quote(tenant)},{_quote(request_id)},{int(nanos)},{float(ts)!r}]\n".encode()
        with self._lock:
            self._open[hold] = line
            self._append(line)

    def release(self, hold: str) -> None:
        """A hold settled (or refused its bill): no longer in flight."""
        with self._lock:
            self._open.pop(hold, None)

    def put(self, bill: Bill) -> int:
        """Queue a bill; its sequence number, or 0 when this attempt was billed here already."""
        e = bill.entry
        bill.json = entry_json(e, bill.ts)
        if unstorable(e, bill.json):
            bill.entry = e = storable(e)
            bill.json = entry_json(e, bill.ts)
        key = (e.tenant, e.request_id, e.attempt)
        answer = "null" if bill.answer is None else json.dumps(bill.answer.__dict__, default=str)
        line = f"[1,{bill.json},{answer},{_quote(bill.hold)}]\n".encode()
        with self._lock:  # kept short: a thread preempted in it stalls every other settle
            self._open.pop(bill.hold, None)
            if key in self._recent:
                return 0
            self._recent[key] = None
            if len(self._recent) > RECENT_BILLS:
                self._recent.popitem(last=False)
            self._append(line)
            self._seq += 1
            bill.seq = self._seq
            self._queue.append(bill)
        if not self.ready.is_set():
            self.ready.set()
        return bill.seq

    def _append(self, line: bytes) -> None:
        # Written into a shared mapping of the file: the page cache keeps it if the process is
        # killed, and no system call (which would hand the GIL to the committing thread) is made.
        end = self._end + len(line)
        if self._map is None or end + 1 > len(self._map):
            self._grow(end + 1)
        assert self._map is not None
        # The end mark first: a process killed mid-write leaves one torn line, never a line joined
        # to older content that an emptied file still has behind its first NUL.
        self._map[end] = 0
        self._map[self._end : end] = line
        self._end = end

    def _grow(self, need: int) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            # Locked for the owner's life: a lock others can take means its owner is gone.
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        size = max(1 << 20, 1 << (need - 1).bit_length())
        os.ftruncate(self._fd, size)
        if self._map is not None:
            self._map.close()
        self._map = mmap.mmap(self._fd, size)

    def sync(self) -> None:
        """Flush the mapping to the disk (msync): what was appended so far survives a power loss."""
        with self._lock:
            if self._map is not None:
                self._map.flush()

    def take(self, limit: int = 4096) -> list[Bill]:
        with self._lock:
            batch, self._queue = self._queue[:limit], self._queue[limit:]
            if not self._queue:
                self.ready.clear()
            return batch

    def put_back(self, batch: list[Bill]) -> None:
        """A batch the database did not take: first in line for the next commit."""
        for bill in batch:
            bill.retried = True
        with self._lock:
            self._queue[:0] = batch
            self.ready.set()

    def unflushed(self, tenant: str) -> list[Bill]:
        with self._lock:
            return [b for b in self._queue if b.entry.tenant == tenant]

    def __len__(self) -> int:
        return len(self._queue)

    def committed(self) -> None:
        """Empty the file once everything in it is in the database."""
        with self._lock:
            if self._queue or self._map is None:
                return
            self._map[0] = 0
            self._end = 0
            for line in self._open.values():  # holds still in flight stay on file
                self._append(line)

    def close(self) -> None:
        """Remove the file when it holds nothing; keep it for a replay otherwise."""
        with self._lock:
            if self._fd is None or self._map is None:
                return
            if not self._queue and not self._open and self._end == 0:
                self.path.unlink(missing_ok=True)
            self._map.close()
            os.close(self._fd)  # releases the lock: what is left is for a replay
            self._fd, self._map = None, None
