"""Fidelity: the simulator against published Ascend measurements.

:mod:`~hetnpu.fidelity.table` reads the calibration table and maps each row to what hetnpu
simulates for it; :mod:`~hetnpu.fidelity.predict` simulates a row. ``benchmarks/fidelity.py``
prints the comparison with its error figures.
"""

from hetnpu.fidelity.predict import Prediction, predict, predict_table
from hetnpu.fidelity.table import Row, Target, load_table, target

__all__ = ["Prediction", "Row", "Target", "load_table", "predict", "predict_table", "target"]
