"""Traces of simulated and measured runs: Chrome/Perfetto JSON, op summaries, diffs, reports.

:mod:`~hetnpu.traces.chrome` writes the simulator's traces, :mod:`~hetnpu.traces.validate`
checks any trace against Perfetto's rules, :mod:`~hetnpu.traces.read` reads hetnpu and
onnxruntime traces into one shape for :mod:`~hetnpu.traces.summary` (op table, unit
utilisation, diffs) and :mod:`~hetnpu.traces.report` (a self-contained HTML page; import it
explicitly, it loads plotly). :mod:`~hetnpu.traces.system` writes whole-system timelines and
:mod:`~hetnpu.traces.runtime` measured ones.

Real Ascend profiles (msprof ``op_summary``/``op_statistic`` CSVs and timeline JSON, torch_npu
``kernel_details.csv`` and ``trace_view.json``) read through :func:`read_trace` too
(:mod:`~hetnpu.traces.msprof_read`); :mod:`~hetnpu.traces.msprof_write` writes a run in
msprof's schema. :mod:`~hetnpu.traces.attribution` says which mechanism each op's time came
from, :mod:`~hetnpu.traces.breakdown` where a run's time went, and
:mod:`~hetnpu.traces.compare` matches a real profile's ops with a simulated run's.
"""

from __future__ import annotations

import os
from typing import Any

from hetnpu.traces.chrome import chrome_trace, iter_events, write_chrome_trace
from hetnpu.traces.read import OpSpan, Trace, UnitSpan, read_trace
from hetnpu.traces.summary import diff_traces, op_summary, unit_utilisation, write_op_summary_csv
from hetnpu.traces.system import write_system_trace
from hetnpu.traces.validate import check_trace, validate_trace

__all__ = [
    "OpSpan",
    "Trace",
    "UnitSpan",
    "check_trace",
    "chrome_trace",
    "diff_traces",
    "iter_events",
    "op_summary",
    "read_trace",
    "unit_utilisation",
    "validate_trace",
    "write_chrome_trace",
    "write_op_summary_csv",
    "write_system_trace",
    "write_trace",
]


def write_trace(result: Any, path: str | os.PathLike[str], level: str | None = None) -> None:
    """Write the Chrome trace of a simulated run, atomically.

    ``result`` is a :class:`~hetnpu.simulator.SimResult` (one chip; ``level`` is ``"op"`` or
    ``"instr"``, default the level it was simulated at) or a
    :class:`~hetnpu.simulator.system.SystemResult` (the whole system's timeline).
    """
    from hetnpu.simulator.system import SystemResult

    if isinstance(result, SystemResult):
        write_system_trace(result, path)
    else:
        write_chrome_trace(result, path, level=level)
