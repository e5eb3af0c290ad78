"""The layering of ARCHITECTURE.md holds, and the contracts that state it really catch a break.

``lint-imports`` (import-linter) checks the contracts in pyproject.toml. The second test copies
the package, adds the import the architecture forbids most plainly (the scheduler importing the
simulator) and shows the contracts fail on the copy, so a contract that had been weakened into
passing anything would fail this test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = shutil.which(
    "lint-imports",
    path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
)


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    assert LINT is not None, "lint-imports comes with .[dev] (import-linter)"
    env = {**os.environ, "PYTHONPATH": str(where), "COLUMNS": "400"}  # one line per contract
    return subprocess.run(
        [LINT, "--no-cache"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_package_keeps_its_contracts() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "BROKEN" not in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("scheduler/__init__.py", "from hetnpu.simulator import simulate", "one way"),
        ("traces/chrome.py", "from hetnpu import chips", "facade"),
        ("simulator/system.py", "from hetnpu.scheduler.placement import place", "never partition"),
        ("graph/ir.py", "from hetnpu.devices import spec", "graph imports nothing"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    shutil.copytree(
        ROOT / "hetnpu", tmp_path / "hetnpu", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "hetnpu" / module
    text = target.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    target.write_text(head + sep + "\n" + line + "  # noqa\n" + rest)
    done = _lint(tmp_path)
    assert done.returncode != 0
    broken = [ln for ln in done.stdout.splitlines() if ln.rstrip().endswith("BROKEN")]
    assert any(contract in ln for ln in broken), done.stdout[-3000:]
