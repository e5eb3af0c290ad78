"""The simulator's cache keys: the lowering cache leaves out what only the run reads."""

from __future__ import annotations

import re
from pathlib import Path

import hetnpu.simulator as sim_pkg
from hetnpu.devices.presets import load_npu
from hetnpu.graph.onnx_io import load
from hetnpu.simulator import simulate
from hetnpu.simulator.lowering import _CACHE
from hetnpu.simulator.spec_key import _RUN_ONLY, _SPEC_FIELDS, chip_key, lowering_key

# Modules an op's lowering runs (the lowering package and what it calls). The run's own modules
# (chip.py, l2.py, control.py...) may read any field.
_LOWERING_MODULES = ("lowering", "tiler.py", "isa.py", "costmodel.py", "formats.py",
                     "prepare.py", "ubfusion.py")  # fmt: skip


def test_no_lowering_module_reads_a_run_only_field():
    root = Path(sim_pkg.__file__).parent
    files = [p for m in _LOWERING_MODULES for p in ((root / m).glob("*.py") if (root / m).is_dir()
             else [root / m])]  # fmt: skip
    assert len(files) > 10
    for path in files:
        text = path.read_text()
        for field in _RUN_ONLY:
            assert not re.search(rf"""[.'"]{field}\b""", text), (path.name, field)


def test_lowering_key_is_chip_key_without_the_run_only_fields():
    spec = load_npu("ascend910b4")
    assert set(_SPEC_FIELDS) > _RUN_ONLY
    assert len(lowering_key(spec)) == len(chip_key(spec)) - len(_RUN_ONLY)
    other = spec.model_copy(update={"l2_bytes": spec.l2_bytes // 8, "task_launch_s": 0.0})
    assert lowering_key(other) == lowering_key(spec)
    assert chip_key(other) != chip_key(spec)
    faster = spec.model_copy(update={"hbm_bytes_per_s": 2 * spec.hbm_bytes_per_s})
    assert lowering_key(faster) != lowering_key(spec)


def test_a_smaller_l2_reuses_the_lowered_programs_and_still_changes_the_run(mm_relu_model):
    graph = load(mm_relu_model, input_shapes={"A": [4096, 256]})
    spec = load_npu("ascend910")
    _CACHE.clear()
    big = simulate(graph, spec)
    lowered = len(_CACHE)
    small = simulate(graph, spec.model_copy(update={"l2_bytes": 1 << 20}))
    assert len(_CACHE) == lowered  # nothing lowered again
    assert small.cycles != big.cycles  # the run did see the smaller L2
