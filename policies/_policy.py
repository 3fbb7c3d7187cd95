"""Pure routing decisions: a score and the tenant's budget in, an ordered plan of tiers out."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class BudgetView:
    """What a policy may know of a tenant's money: the cap and what is left (None: no cap)."""

    cap_usd: Decimal | None = None
    remaining_usd: Decimal | None = None

    @property
    def remaining_share(self) -> float | None:
        if self.cap_usd is None or self.remaining_usd is None or self.cap_usd <= 0:
            return None if self.cap_usd is None else 0.0
        return float(self.remaining_usd / self.cap_usd)


@dataclass(frozen=True)
class Plan:
    """The tiers to try, in order: the first is the routed tier, the rest the escalation ladder."""

    tiers: tuple[str, ...]
    reason: str


@runtime_checkable
class Policy(Protocol):
    def plan(self, score: float, budget: BudgetView) -> Plan: ...


class ThresholdPolicy:
    """Score under thresholds[0] starts at tier 0, under thresholds[1] at tier 1, and so on.

    `downgrade` maps a remaining-budget share to how many of the top tiers are closed: with
    {0.2: 1} a tenant with under 20% of its budget left can no longer reach the top tier.
    """

    def __init__(self, tiers: Sequence[str], thresholds: Sequence[float], downgrade: dict[float, int] | None = None) -> None:
        if not tiers:
            raise ValueError("a policy needs at least one tier")
        if len(thresholds) != len(tiers) - 1:
            raise ValueError(f"{len(tiers)} tiers need {len(tiers) - 1} thresholds, got {len(thresholds)}")
        if list(thresholds) != sorted(thresholds) or any(math.isnan(t) for t in thresholds):
            raise ValueError(f"thresholds must be ascending, got {list(thresholds)}")
        self.tiers = tuple(tiers)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.downgrade = dict(sorted((downgrade or {}).items()))

    def first_tier(self, score: float) -> int:
        """Index of the tier a score routes to."""
        if math.isnan(score):
            raise ValueError("score is NaN")
        return bisect.bisect_right(self.thresholds, score)

    def _closed_tiers(self, budget: BudgetView) -> int:
        share = budget.remaining_share
        if share is None:
            return 0
        return max((n for limit, n in self.downgrade.items() if share < limit), default=0)

    def _why(self, start: int) -> str:
        """Which thresholds put the score on its tier, e.g. ' >= 0.135 and < 0.508: flash'."""
        low = f" >= {self.thresholds[start - 1]:.3f}" if start > 0 else ""
        high = f" < {self.thresholds[start]:.3f}" if start < len(self.thresholds) else ""
        return f"{low}{' and' if low and high else ''}{high}: {self.tiers[start]}"

    def plan(self, score: float, budget: BudgetView) -> Plan:
        start = self.first_tier(score)
        top = len(self.tiers) - min(self._closed_tiers(budget), len(self.tiers) - 1)
        reason = f"score {score:.3f}{self._why(start)}"
        if top < len(self.tiers):
            reason += f"; budget low, top {len(self.tiers) - top} tier(s) closed"
            start = min(start, top - 1)
        return Plan(self.tiers[start:top], reason)
