"""The error tree: everything tierwise raises derives from TierwiseError."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router._types import Attempt


class TierwiseError(Exception):
    """Base class of every error tierwise raises."""


class ConfigError(TierwiseError, ValueError):
    """The configuration is invalid (also a ValueError)."""


class InvalidMessagesError(TierwiseError, ValueError):
    """The messages passed to complete() are malformed; raised before any call."""


class InvalidRequestError(TierwiseError, ValueError):
    """An argument of complete() other than the messages is invalid."""


@dataclass(frozen=True)
class BudgetState:
    """A tenant's budget at one moment."""

    tenant: str
    cap_usd: Decimal | None
    spent_usd: Decimal
    reserved_usd: Decimal  # every hold that counts, presumed ones included
    period: str
    presumed_usd: Decimal = Decimal(0)  # held by instances that died: spent until their bills are replayed (`tierwise ledger reconcile`)

    @property
    def remaining_usd(self) -> Decimal | None:
        if self.cap_usd is None:
            return None
        return max(Decimal(0), self.cap_usd - self.spent_usd - self.reserved_usd)


class BudgetExceeded(TierwiseError):
    """The tenant's budget cannot cover the request: `.state` at the refusal, `.requested_usd` the hold asked for."""

    def __init__(self, message: str, state: BudgetState, requested_usd: Decimal | None = None) -> None:
        super().__init__(message)
        self.state = state
        self.requested_usd = requested_usd


class RateLimited(TierwiseError):
    """The tenant sent more requests this minute than its `rate_limits` allow (the gateway answers 429)."""

    def __init__(self, message: str, tenant: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.tenant = tenant
        self.retry_after_s = retry_after_s


class EscalationExhausted(TierwiseError):
    """Every tier of the plan was tried and none produced an acceptable answer."""

    def __init__(self, message: str, attempts: list[Attempt]) -> None:
        super().__init__(message)
        self.attempts = attempts


class ProviderError(TierwiseError):
    """A model provider failed; the litellm exception is the __cause__."""

    def __init__(self, message: str, *, model: str, status_code: int | None, attempts: list[Any]) -> None:
        super().__init__(message)
        self.model = model
        self.status_code = status_code
        self.attempts = attempts


class LedgerError(TierwiseError):
    """The ledger refused a write that would bill something twice, or could not be reached."""


class LedgerUnavailable(LedgerError):
    """The ledger's database could not be reached or did not answer (the gateway answers 503)."""


class AlreadyBilled(LedgerError):
    """This attempt of this request is billed already: a second bill is refused (the gateway answers 409)."""


class RequestIdConflict(TierwiseError, ValueError):
    """A request id was sent again with other messages or parameters (ids are per tenant)."""

    def __init__(self, message: str, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id


class DuplicateRequestError(TierwiseError):
    """A request id is still being served by another caller and did not finish in time."""

    def __init__(self, message: str, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id
