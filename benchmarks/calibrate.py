"""Refit every calibrated preset value from the calibration table, reproducibly.

Run: ``python benchmarks/calibrate.py [--dry-run]``

Simulates every row hetnpu can (see ``benchmarks/fidelity.py``), fits each chip's
``task_launch_s`` (the one calibrated value; :mod:`hetnpu.fidelity.calibrate` says why and how)
and writes it into the chip's preset file with the rows it was fit on as its source. The fit is
deterministic: the same table and simulator give the same value to the last digit written.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hetnpu.atomic import atomic_write_text  # noqa: E402
from hetnpu.fidelity import load_table, predict_table  # noqa: E402
from hetnpu.fidelity.calibrate import fit_launch, leave_one_model_out  # noqa: E402

PRESETS = ROOT / "hetnpu" / "devices" / "presets"


def _ranges(indices: tuple[int, ...]) -> str:
    out, start, prev = [], None, None
    for i in [*indices, None]:
        if start is not None and (i is None or i != prev + 1):
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = None
        if i is not None and start is None:
            start = i
        prev = i
    return ",".join(out)


def write_preset(preset: str, value_s: float, rows: tuple[int, ...], mape: float) -> None:
    path = PRESETS / f"{preset}.toml"
    text = path.read_text(encoding="utf-8")
    shown = f"{value_s * 1e6:.3f}e-6"
    text, n_value = re.subn(
        r"^task_launch_s = [^\n#]*#[^\n]*$",
        f"task_launch_s = {shown:<24}# calibrated, see [sources]",
        text,
        count=1,
        flags=re.M,
    )
    source = (
        f"calibrated (benchmarks/calibrate.py): fit to rows {_ranges(rows)} of "
        f"hetnpu/fidelity/data/calibration.csv (their MAPE at this value: {100 * mape:.1f}%); "
        "the launch of one kernel of an offline model by CANN's task scheduler, which no "
        "public source gives"
    )
    text, n_source = re.subn(
        r'^task_launch_s = "[^"\n]*"$', f'task_launch_s = "{source}"', text, count=1, flags=re.M
    )
    if (n_value, n_source) != (1, 1):
        raise SystemExit(f"{path}: no task_launch_s line to rewrite ({n_value}, {n_source})")
    atomic_write_text(path, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the fit, write nothing")
    args = parser.parse_args(argv)
    preds, _ = predict_table(load_table())
    fits = fit_launch(preds)
    for preset, fit in fits.items():
        print(
            f"{preset:<11} task_launch_s = {fit.task_launch_s * 1e6:7.3f} us  "
            f"rows {len(fit.rows):>3}  MAPE at the fit {100 * fit.mape:5.1f}%"
        )
        if not args.dry_run:
            write_preset(preset, fit.task_launch_s, fit.rows, fit.mape)
    lomo = leave_one_model_out(preds)
    if lomo:
        errs = list(lomo.values())
        print(f"leave-one-model-out: rows {len(errs)}  MAPE {100 * sum(errs) / len(errs):.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
