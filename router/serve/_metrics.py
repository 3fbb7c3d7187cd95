"""Prometheus text metrics for the gateway, kept in process (one set per worker)."""

from __future__ import annotations

import threading
from collections import defaultdict
from decimal import Decimal

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Counters, spend and a latency histogram; `render()` is the /metrics page."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)  # (tenant, tier, status)
        self.escalations: dict[str, int] = defaultdict(int)
        self.spend: dict[str, Decimal] = defaultdict(Decimal)
        self.refusals: dict[str, int] = defaultdict(int)
        self.saved: dict[tuple[str, str], Decimal] = defaultdict(Decimal)  # (tenant, lever): against always-top
        self.latency: list[int] = [0] * (len(_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.latency_count = 0

    def observe(self, tenant: str, tier: str, status: str, seconds: float, cost: Decimal = Decimal(0), escalations: int = 0,
                saved: dict[str, Decimal] | None = None) -> None:
        with self._lock:
            for lever, amount in (saved or {}).items():
                self.saved[(tenant, lever)] += amount
            self.requests[(tenant, tier, status)] += 1
            self.escalations[tenant] += escalations
            self.spend[tenant] += cost
            if status == "budget_exceeded":
                self.refusals[tenant] += 1
            self.latency[next((i for i, b in enumerate(_BUCKETS) if seconds <= b), len(_BUCKETS))] += 1
            self.latency_sum += seconds
            self.latency_count += 1

    def render(self) -> str:
        with self._lock:
            lines = ["# TYPE tierwise_requests_total counter"]
            lines += [f'tierwise_requests_total{{tenant="{_q(t)}",tier="{_q(tier)}",status="{s}"}} {n}' for (t, tier, s), n in sorted(self.requests.items())]
            lines.append("# TYPE tierwise_escalations_total counter")
            lines += [f'tierwise_escalations_total{{tenant="{_q(t)}"}} {n}' for t, n in sorted(self.escalations.items())]
            lines.append("# TYPE tierwise_spend_usd_total counter")
            lines += [f'tierwise_spend_usd_total{{tenant="{_q(t)}"}} {format(v, "f")}' for t, v in sorted(self.spend.items())]
            # A gauge: routing's saving goes down when escalations and failed checks cost more than it saved.
            lines.append("# TYPE tierwise_saved_usd gauge")
            lines += [f'tierwise_saved_usd{{tenant="{_q(t)}",lever="{lever}"}} {format(v, "f")}' for (t, lever), v in sorted(self.saved.items())]
            lines.append("# TYPE tierwise_budget_refusals_total counter")
            lines += [f'tierwise_budget_refusals_total{{tenant="{_q(t)}"}} {n}' for t, n in sorted(self.refusals.items())]
            lines.append("# TYPE tierwise_request_seconds histogram")
            total = 0
            for bound, n in zip((*_BUCKETS, float("inf")), self.latency, strict=True):
                total += n
                lines.append(f'tierwise_request_seconds_bucket{{le="{"+Inf" if bound == float("inf") else bound}"}} {total}')
            lines += [f"tierwise_request_seconds_sum {self.latency_sum}", f"tierwise_request_seconds_count {self.latency_count}"]
        return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
