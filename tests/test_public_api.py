"""The public API is exactly what the README documents, and importing it stays light."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import classifiers
import policies
import router

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PACKAGES = ("router", "classifiers", "policies")


def _documented(package: str) -> set[str]:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- api:{re.escape(package)} -->\s*```text\n(.*?)```", text, re.DOTALL)
    assert match, f"README has no api:{package} block"
    return set(match.group(1).split())


def test_router_all_is_what_readme_documents() -> None:
    assert set(router.__all__) == _documented("router")
    assert all(hasattr(router, name) for name in router.__all__)


def test_router_all_is_written_out_for_tools() -> None:
    tree = ast.parse((ROOT / "router" / "__init__.py").read_text(encoding="utf-8"))
    assigned = [n.value for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)]
    assert len(assigned) == 1 and isinstance(assigned[0], ast.List)
    assert all(isinstance(e, ast.Constant) for e in assigned[0].elts)


def test_classifiers_checks_and_policies_all_are_documented() -> None:
    import router.checks
    import router.evaluate
    import router.learning
    import router.ledger
    import router.serve
    import router.testing

    for module in (router.checks, router.ledger, router.evaluate, router.learning, router.testing, router.serve):
        assert set(module.__all__) == _documented(module.__name__), module.__name__
        assert all(hasattr(module, name) for name in module.__all__)
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
                assert not re.search(rf"^\s*(from|import) {name}\b", text, re.MULTILINE), f"{path} imports {name}"


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project modules a file imports, anywhere in it (functions and TYPE_CHECKING blocks too)."""
    found: set[str] = set()
    package = _module_of(path) if path.name == "__init__.py" else _module_of(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    return found & known


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    known = {_module_of(p) for p in files}
    return {_module_of(p): _imports(p, known) - {_module_of(p)} for p in files}


def test_no_import_circles() -> None:
    graph = _graph()
    assert "router.ledger._base" in graph and graph["router._run"]  # the walk sees the packages
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(module) :] + [module]))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_tests_bench_and_examples_use_public_doors_only() -> None:
    private = re.compile(r"^\s*(?:from|import)\s+((?:router|classifiers|policies)(?:\.\w+)*\._\w+)", re.MULTILINE)
    offenders = [
        f"{path.relative_to(ROOT)}: {match}"
        for folder in ("tests", "bench", "examples")
        for path in (ROOT / folder).rglob("*.py")
        for match in private.findall(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders


def test_the_request_path_imports_no_plotting_or_training_libraries(tmp_path: Path) -> None:
    code = (
        "import sys; from router import Router, RouterConfig; "
        f"r = Router(RouterConfig(ledger='sqlite:///{tmp_path / 'l.db'}')); "
        "r.complete([{'role': 'user', 'content': 'hi'}], mock_response='ok'); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'matplotlib', 'scipy', 'sklearn', 'tqdm'}))"
    )
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT).stdout
    assert out.strip().splitlines()[-1] == "[]", out


def test_the_ledger_is_small_owners_none_taking_anothers_lock() -> None:
    """#23: no class of router/ledger over 150 lines; `_rows` (our reservation rows) is Books' alone."""
    for path in (ROOT / "router" / "ledger").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for node in ast.parse(text).body:
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None and node.end_lineno - node.lineno < 150, f"{path.name}: {node.name} is too long"
        if path.name != "_books.py":
            assert "_rows" not in text, f"{path.name} takes the books' lock"
