"""What-if studies: simulate a model over grids of chip configurations and run parameters.

>>> from hetnpu.whatif import run_sweep
>>> rows = run_sweep("mlp", "ascend910", grid={"ai_cores": [8, 32]}, workers=1)
>>> [(r["ai_cores"], r["status"]) for r in rows]
[(8, 'ok'), (32, 'ok')]

:mod:`~hetnpu.whatif.grid` (keys, points, study files), :mod:`~hetnpu.whatif.sweep` (validation
and execution), :mod:`~hetnpu.whatif.worker` (one point), :mod:`~hetnpu.whatif.store` (journal
and CSV) and :mod:`~hetnpu.whatif.report` (the HTML page).
"""

from hetnpu.whatif.grid import Study, parse_grid_items
from hetnpu.whatif.sweep import PreparedSweep, SweepResult, prepare, run_study, run_sweep

__all__ = [
    "PreparedSweep",
    "Study",
    "SweepResult",
    "parse_grid_items",
    "prepare",
    "run_study",
    "run_sweep",
]
