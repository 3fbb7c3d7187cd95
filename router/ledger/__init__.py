"""The spend ledger: holds before a call, one entry per attempt after it, the stored answer of
each request id. SQLite by default; PostgreSQL when app instances share budgets.

    from router.ledger import open_ledger
    ledger = open_ledger("sqlite:///spend.db", config.budget_for)
    ledger.spent("acme"), ledger.entries("acme")
"""

from router.ledger._base import Ledger
from router.ledger._keys import ApiKey
from router.ledger._labels import Label, SavedModel
from router.ledger._open import open_ledger
from router.ledger._records import (
    Entry,
    Reservation,
    SpendRow,
    StoredAnswer,
    StoredRequest,
    from_nanos,
    period_start,
    to_nanos,
)

__all__ = [
    "ApiKey",
    "Entry",
    "Label",
    "Ledger",
    "Reservation",
    "SavedModel",
    "SpendRow",
    "StoredAnswer",
    "StoredRequest",
    "from_nanos",
    "open_ledger",
    "period_start",
    "to_nanos",
]
