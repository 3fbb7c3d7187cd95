"""Pacing a period's label budget (`learning.spread`): labels bought no faster than the period
passes, so the afternoon's traffic is labelled as well as the morning's, after a head start so
that a new period does not begin with none."""

from __future__ import annotations

import math
from datetime import UTC

from router.ledger import period_start

HEAD_START = 1 / 24  # of a period's budget, open at once (an hour of a day, a day and a quarter of a month)
_NEXT_DAYS = {"day": 1.5, "week": 7.5, "month": 31.5}  # from a period's start, a time inside the next period


def allowed_share(period: str, now: float) -> float:
    """The share of a period's label budget that may be spent by `now`: what has passed of the
    period (UTC), plus the head start; all of it for `total`."""
    if period == "total":
        return 1.0
    start = period_start(period, now, UTC)
    end = period_start(period, start + _NEXT_DAYS[period] * 86400, UTC)
    return min(1.0, (now - start) / (end - start) + HEAD_START)


def paced_labels(labels: int, period: str, now: float) -> int:
    """How many of the period's `labels` may have been bought by `now` (at least one)."""
    return min(labels, max(1, math.ceil(labels * allowed_share(period, now))))
