"""``benchmarks/calibrate.py`` writes the fitted values into the presets: every file or none."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from hetnpu.fidelity.calibrate import Fit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def script(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("calibrate_script", ROOT / "benchmarks" /
                                                  "calibrate.py")  # fmt: skip
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    presets = tmp_path / "presets"
    shutil.copytree(ROOT / "hetnpu" / "devices" / "presets", presets)
    monkeypatch.setattr(module, "PRESETS", presets)
    return module


def _fit(preset: str, launch: float, execute: float) -> Fit:
    return Fit(preset, launch, execute, (0, 1, 2), (0, 1, 2, 3, 4, 5), 0.1234, 0.0567)


def test_writes_both_values_and_their_sources(script) -> None:
    script.write_presets([_fit("ascend310p", 2.5e-6, 77.7e-6)])
    text = (script.PRESETS / "ascend310p.toml").read_text()
    assert "\ntask_launch_s = 2.500e-6 " in text
    assert "\nmodel_execute_s = 77.7e-6 " in text
    launch_src = next(ln for ln in text.splitlines() if ln.startswith('task_launch_s = "'))
    execute_src = next(ln for ln in text.splitlines() if ln.startswith('model_execute_s = "'))
    assert "fit to rows 0-2 of" in launch_src and "at this value: 12.3%" in launch_src
    assert "fit to rows 0-5 of" in execute_src and "at this value: 5.7%" in execute_src


def test_a_second_write_of_the_same_values_changes_nothing(script) -> None:
    fits = [_fit("ascend310", 14e-6, 88.3e-6), _fit("ascend310p", 1.1e-6, 88.3e-6)]
    script.write_presets(fits)
    once = {p.name: p.read_text() for p in script.PRESETS.glob("*.toml")}
    script.write_presets(fits)
    assert {p.name: p.read_text() for p in script.PRESETS.glob("*.toml")} == once


def test_a_preset_without_a_calibrated_line_leaves_every_file_as_it_was(script) -> None:
    before = {p.name: p.read_text() for p in script.PRESETS.glob("*.toml")}
    # ascend910's launch and execute costs are "not calibrated": nothing to rewrite there.
    fits = [_fit("ascend310p", 2.5e-6, 77.7e-6), _fit("ascend910", 1e-6, 77.7e-6)]
    with pytest.raises(SystemExit, match=r"ascend910\.toml: no calibrated"):
        script.write_presets(fits)
    assert {p.name: p.read_text() for p in script.PRESETS.glob("*.toml")} == before
