"""The public API is exactly what the README documents, and importing it stays light."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import classifiers
import policies
import router

README = Path(__file__).resolve().parents[1] / "README.md"


def _documented(package: str) -> set[str]:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- api:{re.escape(package)} -->\s*```text\n(.*?)```", text, re.S)
    assert match, f"README has no api:{package} block"
    return set(match.group(1).split())


def test_router_all_is_what_readme_documents() -> None:
    assert set(router.__all__) == _documented("router")
    assert all(hasattr(router, name) for name in router.__all__)


def test_classifiers_checks_and_policies_all_are_documented() -> None:
    import router.checks

    assert set(router.checks.__all__) == _documented("router.checks")
    assert set(classifiers.__all__) == _documented("classifiers")
    assert set(policies.__all__) == _documented("policies")


def test_import_router_does_not_import_litellm_or_sklearn() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import router, classifiers, policies; "
        "[getattr(router, n) for n in router.__all__]; "
        "print(time.perf_counter() - t); "
        "print(any(m == 'litellm' or m.startswith('litellm.') for m in sys.modules)); "
        "print(any(m.startswith('sklearn') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == ["False", "False"], out


def test_packages_do_not_import_each_other_against_the_architecture() -> None:
    root = Path(__file__).resolve().parents[1]
    for package, banned in (("classifiers", ("router", "policies")), ("policies", ("router", "classifiers"))):
        for path in (root / package).glob("*.py"):
            text = path.read_text(encoding="utf-8")
            for name in banned:
                assert not re.search(rf"^\s*(from|import) {name}\b", text, re.M), f"{path} imports {name}"
