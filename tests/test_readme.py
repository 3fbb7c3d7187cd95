"""The README runs: every Python block as pasted, every YAML config block loads, and every `$ tierwise`
line of a console block prints what the README shows, against a local OpenAI-compatible server."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from router import RouterConfig
from router.testing import LocalOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(kind: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README) if lang == kind]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A working directory beside the examples, and an environment whose default models answer locally."""
    with LocalOpenAIServer() as server:
        cwd = tmp_path_factory.mktemp("readme")
        (cwd / "examples").symlink_to(ROOT / "examples")
        env = {**os.environ, "OPENAI_API_KEY": "sk-readme-test-0123456789abcdef", "OPENAI_API_BASE": server.url,
               "TIERWISE_HOME": str(cwd / "home"), "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(ROOT)}
        env.pop("TIERWISE_CONFIG", None)
        yield cwd, env


@pytest.fixture(scope="module")
def python_blocks(workdir: tuple[Path, dict[str, str]]) -> list[tuple[str, subprocess.CompletedProcess[str]]]:
    """Each Python block of the README run once, as pasted, in its own interpreter (three at a time: they
    share the default ledger, as separate app processes would)."""
    from concurrent.futures import ThreadPoolExecutor

    cwd, env = workdir

    def run(item: tuple[int, str]) -> tuple[str, subprocess.CompletedProcess[str]]:
        i, code = item
        script = cwd / f"readme_block_{i}.py"
        script.write_text(code, encoding="utf-8")
        return code, subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)

    with ThreadPoolExecutor(3) as pool:
        return list(pool.map(run, enumerate(blocks("python"))))


def test_every_python_block_runs_as_pasted(python_blocks: list[tuple[str, subprocess.CompletedProcess[str]]]) -> None:
    assert len(python_blocks) >= 3
    for code, result in python_blocks:
        assert result.returncode == 0, f"README python block failed:\n{code}\n{result.stderr[-3000:]}"


def test_every_yaml_config_block_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_INTERNAL_KEY", "sk-internal-0123456789abcdef")
    found = blocks("yaml")
    assert found
    for text in found:
        RouterConfig.from_dict(yaml.safe_load(text))


def _expected(line: str) -> re.Pattern[str]:
    """A README output line as a pattern: numbers may differ, `…` stands for anything."""
    pattern = re.sub(r"\d+", lambda _m: r"\d+", re.escape(line.rstrip()).replace("…", "\x00"))
    return re.compile(pattern.replace("\x00", ".*"))


def _commands() -> list[tuple[str, list[str]]]:
    """(command, the output lines the README shows for it), in README order."""
    out: list[tuple[str, list[str]]] = []
    for body in blocks("console"):
        for line in body.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            elif out and line.strip():
                out[-1][1].append(line)
    return out


def test_every_cli_line_prints_what_the_readme_shows(workdir: tuple[Path, dict[str, str]], python_blocks: list[object]) -> None:
    cwd, env = workdir  # after the Python blocks: the ledger report reads what they spent
    commands = _commands()
    assert {c.split()[1] for c, _ in commands} >= {"--version", "score", "eval", "calibrate", "ledger"}
    for command, shown in commands:
        argv = shlex.split(command)
        assert argv[0] == "tierwise", command
        result = subprocess.run([sys.executable, "-m", "router.cli", *argv[1:]], cwd=cwd, env=env, capture_output=True,
                                text=True, timeout=300, check=False)
        assert result.returncode == 0, f"{command}\n{result.stderr[-2000:]}"
        lines = result.stdout.splitlines()
        at = 0
        for want in shown:  # the shown lines appear in order (the README may leave some out)
            pattern = _expected(want)
            while at < len(lines) and not pattern.fullmatch(lines[at].rstrip()):
                at += 1
            assert at < len(lines), f"{command}: README shows {want!r}, output was:\n{result.stdout}"
            at += 1


def test_output_patterns_allow_changed_numbers_only() -> None:
    pattern = _expected("router (thresholds 0.350, 0.700)                0.591     $0.0894/1k")
    assert pattern.fullmatch("router (thresholds 0.152, 0.251)                0.818     $1.0059/1k")
    assert not pattern.fullmatch("router (thresholds 0.152, 0.251)                0.818     $1.0059/1M")
    assert _expected('  "ledger": "sqlite:///…/ledger.db",').fullmatch('  "ledger": "sqlite:////tmp/x/home/ledger.db",')
