from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

# Tests never fetch litellm's price map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# A Router built without a ledger URL writes to the per-user data directory: keep tests out of it.
os.environ.setdefault("TIERWISE_HOME", tempfile.mkdtemp(prefix="tierwise-tests-"))

from classifiers import Classifier
from router import RouterConfig
from router.testing import LocalOpenAIServer

SECRET = "sk-test-abcdefghijklmnopqrstuvwxyz0123456789"


class KeywordClassifier:
    """A Classifier for routing tests: the score is read from the prompt ('#0.8' scores 0.8)."""

    def score(self, messages: Any) -> float:
        text = str(messages[-1]["content"])
        return float(text.split("#", 1)[1].split()[0]) if "#" in text else 0.1

    def score_batch(self, batch: Any) -> list[float]:
        return [self.score(m) for m in batch]


assert isinstance(KeywordClassifier(), Classifier)


def local_tiers(url: str, names: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Tiers served by the local server; prices set so tests can compute costs by hand."""
    names = names or {"small": ["m-small"], "flash": ["m-flash"], "frontier": ["m-big"]}
    prices = {"small": ("0.0000001", "0.0000004"), "flash": ("0.000001", "0.000004"), "frontier": ("0.00001", "0.00004")}
    return [
        {
            "name": tier,
            "models": [
                {"model": f"openai/{m}", "api_base": url, "api_key": SECRET,
                 "input_cost_per_token": prices.get(tier, prices["frontier"])[0],
                 "output_cost_per_token": prices.get(tier, prices["frontier"])[1]}
                for m in models
            ],
        }
        for tier, models in names.items()
    ]


MOCK_TIERS = [
    {"name": "small", "models": ["gpt-5-nano"]},
    {"name": "flash", "models": ["gpt-5-mini"]},
    {"name": "frontier", "models": ["gpt-5"]},
]


@pytest.fixture
def ledger_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def mock_config(ledger_url: str) -> RouterConfig:
    return RouterConfig.from_dict({"tiers": MOCK_TIERS, "ledger": ledger_url, "thresholds": [0.4, 0.7]})


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer() as srv:
        yield srv


@pytest.fixture
def local_config(server: LocalOpenAIServer, ledger_url: str) -> RouterConfig:
    return RouterConfig.from_dict({"tiers": local_tiers(server.url), "ledger": ledger_url, "thresholds": [0.4, 0.7]})


PG_ADMIN = os.environ.get("TIERWISE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import uuid

    psycopg = pytest.importorskip("psycopg")
    name = f"tierwise_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is needed in CI and is not reachable at {PG_ADMIN}: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_ADMIN}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def any_ledger_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Each ledger backend in turn, for contract tests."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("pg_url")
