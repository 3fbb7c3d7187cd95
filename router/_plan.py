"""A run's small decision objects: where it stands in its plan, and whether to wait for the budget.

Each owns one piece of state and decides one thing (tenacity's style): the cursor moves through the
plan's tiers and models; the budget wait says `Sleep(seconds)` or gives up, with the backoff injected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from router._errors import BudgetExceeded


@dataclass(frozen=True)
class Sleep:
    """Ask the driver to sleep this long, then ask the run for its next call again."""

    seconds: float


def capped_backoff(waits: int) -> float:
    """10 ms doubling per wait, capped at 0.2 s: holds usually settle within one model call."""
    return min(0.2, 0.01 * 2.0 ** min(waits, 5))


@dataclass
class PlanCursor:
    """Where a run stands in its plan: the tier, the model within that tier, the tiers ahead."""

    tiers: list[str]
    tier: int = 0
    model: int = 0
    min_window: int = 0  # after a context-window error: the least input window worth trying

    @property
    def current(self) -> str | None:
        """The tier now tried, or None once the plan is used up."""
        return self.tiers[self.tier] if self.tier < len(self.tiers) else None

    @property
    def moves(self) -> int:
        """How many times the run has moved up a tier (escalations so far)."""
        return self.tier

    def next_model(self) -> None:
        """The current model failed or does not fit: the next one of the same tier."""
        self.model += 1

    def escalate(self) -> None:
        """The tier's answer failed its checks, or its models ran out: the next tier, first model."""
        self.tier, self.model = self.tier + 1, 0

    def step_down(self, all_tiers: Sequence[str]) -> bool:
        """Put the tier below the current one in front (it may fit a budget); False at the bottom."""
        current = self.current
        below = all_tiers.index(current) - 1 if current in all_tiers else -1
        if below < 0:
            return False
        self.tiers.insert(self.tier, all_tiers[below])
        self.model = 0
        return True


@dataclass
class BudgetWait:
    """Whether a request the budget refused should wait for other requests' holds to settle.

    Only settled money refuses (spent, and what dead instances are presumed to have spent): while
    the request would fit on that alone and live holds take the room, it waits up to the caller's
    `deadline`, however slow the machine. With a `limit_s`, it gives up that long after the first
    refusal unless the books keep moving (holds settle or are taken). A refusal whose own snapshot
    shows room (a hold released in between) is tried again at once.
    """

    limit_s: float | None
    clock: Callable[[], float]
    deadline: float = float("inf")
    backoff: Callable[[int], float] = capped_backoff
    _first: float | None = field(default=None, init=False)
    _waits: int = field(default=0, init=False)
    _last_books: tuple[Decimal, Decimal] | None = field(default=None, init=False)

    def __call__(self, refusal: BudgetExceeded) -> Sleep | None:
        state, amount = refusal.state, refusal.requested_usd or Decimal(0)
        if state.cap_usd is None or state.spent_usd + state.presumed_usd + amount > state.cap_usd:
            return None  # settled money alone cannot hold it: no wait will help
        now = self.clock()
        if self._first is None:
            self._first = now
        if state.spent_usd + state.reserved_usd + amount <= state.cap_usd:
            return Sleep(0.0)  # room appeared between the refusal and its snapshot
        books = (state.spent_usd, state.reserved_usd)
        moving = self._last_books is not None and books != self._last_books  # holds settled or were taken
        self._last_books = books
        if now >= self.deadline or (self.limit_s is not None and not (now - self._first < self.limit_s or moving)):
            return None
        self._waits += 1
        return Sleep(self.backoff(self._waits))
