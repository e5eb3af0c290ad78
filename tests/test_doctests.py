"""Every docstring example of the ``hetnpu`` package runs, and shows what it says it shows.

The modules are found by walking the package, so a new module's examples run without being
listed here. Left out: ``__main__`` modules (importing one runs the CLI) and
``hetnpu.testing`` (test helpers, moving out of the package).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import hetnpu

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules() -> list[str]:
    names = ["hetnpu"]
    for info in pkgutil.walk_packages(hetnpu.__path__, "hetnpu."):
        if info.name.endswith(".__main__") or info.name.startswith("hetnpu.testing"):
            continue
        names.append(info.name)
    return sorted(names)


MODULES = _modules()


def _doctests(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder().find(module, name) if t.examples]


@pytest.mark.parametrize("name", MODULES)
def test_the_module_examples_run(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An example that writes a file writes it in a fresh directory, not in the checkout.
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report: list[str] = []
    for test in _doctests(name):
        runner.run(test, out=report.append)
    failed, _attempted = runner.summarize(verbose=False)
    assert failed == 0, "".join(report)


def test_the_examples_are_found() -> None:
    # A walk that found no modules, or a finder that found no examples, would pass the test
    # above vacuously: these modules hold examples that run (none of them skipped).
    run = {
        name: sum(not ex.options.get(doctest.SKIP) for t in _doctests(name) for ex in t.examples)
        for name in ("hetnpu.simulator.isa", "hetnpu.devices.spec", "hetnpu.atomic")
    }
    assert all(count > 0 for count in run.values()), run
    assert "hetnpu.simulator.chip" in MODULES and "hetnpu.whatif.sweep" in MODULES
