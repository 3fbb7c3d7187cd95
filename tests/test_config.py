"""Configuration: defaults, loaders, strict validation with clear errors, secrets kept out of repr."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pytest

from router import ConfigError, Router, RouterConfig


def test_defaults_are_three_real_priced_models(tmp_path: Path) -> None:
    config = RouterConfig(ledger=f"sqlite:///{tmp_path / 'l.db'}")
    assert [t.name for t in config.tiers] == ["small", "flash", "frontier"]
    router = Router(config)  # refuses unpriced models: the defaults are all in litellm's map
    prices = [router.client.prices(t.models[0]).output for t in config.tiers]
    assert prices == sorted(prices) and prices[0] > 0
    assert config.effective_thresholds() == [0.135, 0.508]


def test_model_entries_accept_strings_and_mappings() -> None:
    config = RouterConfig.from_dict({"tiers": {"cheap": ["gpt-5-nano", {"model": "ollama/llama3", "api_base": "http://127.0.0.1:1", "input_cost_per_token": 0, "output_cost_per_token": 0.0}], "top": ["gpt-5"]}})
    local = config.tiers[0].models[1]
    assert local.params == {"api_base": "http://127.0.0.1:1"} and local.output_cost_per_token == Decimal(0)
    assert config.effective_thresholds() == [0.289]


def test_float_prices_become_exact_decimals() -> None:
    config = RouterConfig.from_dict({"tiers": [{"name": "a", "models": [{"model": "x", "input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07}]}]})
    assert config.tiers[0].models[0].input_cost_per_token == Decimal("1.5E-7")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"tiers": []}, "tiers"),
        ({"tiers": [{"name": "a", "models": []}]}, "models"),
        ({"tiers": [{"name": "a", "models": ["x"]}, {"name": "a", "models": ["y"]}]}, "unique"),
        ({"thresholds": [0.8, 0.2]}, "ascending"),
        ({"thresholds": [0.5]}, "need 2 thresholds"),
        ({"tenants": {"acme": {"budget_usd": "-1"}}}, "budget_usd"),
        ({"tenants": {"acme": {"budget_usd": "NaN"}}}, "budget_usd"),
        ({"tenants": {"acme": {"budget_usd": float("inf")}}}, "budget_usd"),
        ({"tenants": {"acme": {"budget_usd": 5, "period": "fortnight"}}}, "period"),
        ({"unknown_key": 1}, "unknown_key"),
        ({"retry": {"attempts": 0}}, "attempts"),
    ],
)
def test_invalid_config_is_a_config_error_naming_the_field(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        RouterConfig.from_dict(data)
    assert isinstance(info.value, ValueError) and needle in str(info.value)


def test_loads_yaml_toml_json_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "c.yaml").write_text("tiers:\n  - name: s\n    models: [gpt-5-nano]\n  - name: f\n    models: [gpt-5]\ntenants:\n  acme: {budget_usd: '5.00', period: day}\n")
    (tmp_path / "c.toml").write_text('[[tiers]]\nname = "s"\nmodels = ["gpt-5-nano"]\n[[tiers]]\nname = "f"\nmodels = ["gpt-5"]\n[tenants.acme]\nbudget_usd = "5.00"\nperiod = "day"\n')
    (tmp_path / "c.json").write_text('{"tiers": [{"name": "s", "models": ["gpt-5-nano"]}, {"name": "f", "models": ["gpt-5"]}], "tenants": {"acme": {"budget_usd": "5.00", "period": "day"}}}')
    loaded = [RouterConfig.from_file(tmp_path / f"c.{ext}") for ext in ("yaml", "toml", "json")]
    assert loaded[0] == loaded[1] == loaded[2]
    assert loaded[0].tenants["acme"].budget_usd == Decimal("5.00")
    monkeypatch.setenv("TIERWISE_CONFIG", str(tmp_path / "c.yaml"))
    assert RouterConfig.from_env() == loaded[0]


def test_bad_files_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("tiers: [unclosed\n")
    (tmp_path / "bad.toml").write_text("tiers = [\n")
    (tmp_path / "c.ini").write_text("")
    for name in ("bad.yaml", "bad.toml", "c.ini", "missing.yaml"):
        with pytest.raises(ConfigError):
            RouterConfig.from_file(tmp_path / name)
    with pytest.raises(ConfigError):
        RouterConfig.from_dict(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_unpriced_model_is_refused_at_construction(tmp_path: Path) -> None:
    config = RouterConfig.from_dict({"tiers": [{"name": "a", "models": ["my-private/model-without-price"]}], "ledger": f"sqlite:///{tmp_path / 'l.db'}"})
    with pytest.raises(ConfigError, match="input_cost_per_token"):
        Router(config)


def test_secrets_never_in_repr() -> None:
    config = RouterConfig.from_dict({"tiers": [{"name": "a", "models": [{"model": "gpt-5", "api_key": "sk-verysecretvalue1234567", "aws_secret_access_key": "hunter22"}]}]})
    text = repr(config) + str(config.tiers[0].models[0])
    assert "sk-verysecretvalue1234567" not in text and "hunter22" not in text


def test_bad_ledger_url_is_config_error(tmp_path: Path) -> None:
    for url in ("mysql://x", f"sqlite:///{tmp_path}/no/such/dir/l.db"):
        with pytest.raises(ConfigError):
            Router(RouterConfig(ledger=url))


def test_nan_threshold_rejected() -> None:
    with pytest.raises(ConfigError):
        RouterConfig.from_dict({"thresholds": [math.nan, 0.5]})


def test_env_references_in_string_values(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("TW_TEST_KEY", "sk-from-env-0123456789abcdef")
    path = tmp_path / "c.yaml"
    path.write_text("tiers:\n  - name: small\n    models:\n      - model: openai/m\n        api_key: ${TW_TEST_KEY}\n"
                    "        api_base: ${TW_TEST_BASE:-http://127.0.0.1:9/v1}\n        input_cost_per_token: 0\n        output_cost_per_token: 0\n")
    spec = RouterConfig.from_file(path).tiers[0].models[0]
    assert spec.params == {"api_key": "sk-from-env-0123456789abcdef", "api_base": "http://127.0.0.1:9/v1"}
    assert "sk-from-env" not in repr(spec)
    monkeypatch.delenv("TW_TEST_KEY")
    with pytest.raises(ConfigError, match=r"tiers\[0\].models\[0\].api_key: environment variable TW_TEST_KEY is not set"):
        RouterConfig.from_file(path)


def test_default_ledger_lives_in_the_user_data_directory(monkeypatch: pytest.MonkeyPatch, tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERWISE_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    caplog.set_level(logging.INFO, logger="tierwise")
    with Router(RouterConfig()) as router:
        router.complete([{"role": "user", "content": "hi"}], mock_response="hello")
    assert (tmp_path / "data" / "tierwise" / "ledger.db").is_file()
    assert not list(tmp_path.glob("*.db"))  # nothing appears in the working directory
    assert f"spend ledger at sqlite:///{tmp_path / 'data' / 'tierwise' / 'ledger.db'}" in caplog.text


def test_a_parameter_one_model_does_not_take_is_dropped_for_it(tmp_path) -> None:
    config = RouterConfig.from_dict({"ledger": f"sqlite:///{tmp_path / 'l.db'}"})  # the default tiers: gpt-5 models
    with Router(config) as router:
        resp = router.complete([{"role": "user", "content": "hi"}], temperature=0.2, mock_response="hello")
    assert resp.choices[0].message.content == "hello"


@pytest.mark.parametrize("section", [{"tenants": {"tierwise-learning": {"budget_usd": "1"}}},
                                     {"gateway": {"keys": {"tierwise-learning": ["a" * 64]}}},
                                     {"rate_limits": {"tierwise-learning": {"rpm": 5}}}])
def test_the_labels_tenant_is_reserved_in_every_section_that_names_tenants(section: dict[str, object]) -> None:
    """Its money is the learning budget's and no rate limit applies to it: no caller may be it."""
    with pytest.raises(ConfigError, match="reserved for the learning budget"):
        RouterConfig.from_dict(section)
