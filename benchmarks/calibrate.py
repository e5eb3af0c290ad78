"""Refit every calibrated preset value from the calibration table, reproducibly.

Run: ``python benchmarks/calibrate.py [--dry-run] [--llm] [--nd2nz] [--host]``

Simulates every row hetnpu can (see ``benchmarks/fidelity.py``), fits each chip's
``task_launch_s`` and the runtime's ``model_execute_s`` (the two calibrated values;
:mod:`hetnpu.fidelity.calibrate` says why and how) and writes them into the chip's preset file
with the rows they were fit on as their source. The fit is deterministic: the same table and
simulator give the same values to the last digit written.

``--llm`` also fits the launch cost of the Atlas 800I A2's NPU (``ascend910b4``) to the LLM
rows (torchair graph mode: ChatGLM3-6B on one NPU, LLaMA-2-70B on eight). Each row is simulated
at the preset's launch cost and at a trial one; a sunk graph's time is linear in the launch cost
(every kernel waits it once), so the two give each row's kernel count and the fit is exact
without further simulation. A host-bound row hides part of its launches behind the host: its
"kernels" column is the secant's slope, fewer than it runs. Its leave-one-model-out error fits
on one network and predicts the other.

``--host`` first fits the Atlas 800I A2 host's ``host_op_s`` (what GE's host scheduling takes
per op of a dynamic-shape graph, :mod:`hetnpu.whatif.llm_host`) to the rows whose graphs were
compiled with symbolic shapes (ChatGLM3-6B): a grid by 1 us, then by 0.1 us around its best.
The host's time is not part of a simulation, so every trial replays the same simulations.

``--nd2nz`` first fits the 910B's ``mte2_nd2nz_read_fraction`` (the rate of MTE2's ND→NZ
panel copies, :func:`hetnpu.simulator.lowering.matmul.nd_read_fraction`) to the rows it moves,
the 910B4's launch cost refit at each trial value; then ``--llm`` refits that launch cost at the
fraction chosen.
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
from hetnpu.fidelity.calibrate import Fit, fit_overheads, leave_one_model_out  # noqa: E402

LLM_PRESET = "ascend910b4"
TRIAL_LAUNCH_S = 10e-6

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


def _set_value(text: str, key: str, value: str) -> tuple[str, int]:
    """``key``'s value in a preset's ``key = value   # comment`` line replaced, the comment kept
    at column 41; and how many lines were rewritten (0 or 1)."""
    line = f"{key} = {value}"
    return re.subn(rf"^{key} = [^\n#]*(?=#)", f"{line:<40}", text, count=1, flags=re.M)


def write_presets(fits: list[Fit]) -> None:
    """Write each chip's fitted ``task_launch_s`` and the shared ``model_execute_s`` into its
    preset (see :func:`_rewritten`): every file's new text is made before any is written, so a
    preset that cannot take a value leaves all of them as they were."""
    texts = {}
    for fit in fits:
        text = _rewritten(
            fit.preset, None, "task_launch_s", f"{fit.task_launch_s * 1e6:.3f}e-6", fit.rows,
            fit.mape,
        )  # fmt: skip
        texts[fit.preset] = _rewritten(
            fit.preset, text, "model_execute_s", f"{fit.model_execute_s * 1e6:.1f}e-6",
            fit.execute_rows, fit.execute_mape,
        )  # fmt: skip
    for preset, text in texts.items():
        atomic_write_text(PRESETS / f"{preset}.toml", text)


def write_launch(preset: str, value_s: float, rows: tuple[int, ...], mape: float) -> None:
    """Write a fitted ``task_launch_s`` alone into ``preset`` (the LLM rows' fit)."""
    _rewrite(preset, "task_launch_s", f"{value_s * 1e6:.3f}e-6", rows, mape)


def _rewrite(preset: str, key: str, value: str, rows: tuple[int, ...], mape: float) -> None:
    """Write :func:`_rewritten`'s text into ``preset``'s file."""
    atomic_write_text(PRESETS / f"{preset}.toml", _rewritten(preset, None, key, value, rows, mape))


def _rewritten(
    preset: str, text: str | None, key: str, value: str, rows: tuple[int, ...], mape: float
) -> str:
    """``preset``'s text (its file's, when ``text`` is None) with a calibrated ``key``'s new
    value, and in its source the rows it was fit on and their MAPE at it (the rest of the
    source kept as written); SystemExit if the preset has no calibrated ``key`` to rewrite."""
    path = PRESETS / f"{preset}.toml"
    if text is None:
        text = path.read_text(encoding="utf-8")
    text, n = _set_value(text, key, value)
    text, m = re.subn(
        rf"(^{key} = \"calibrated [^\n]*?fit (?:to|on) rows )[0-9,-]+( of [^\n]*?"
        r"their MAPE at this value: )[0-9.]+%",
        lambda mt: f"{mt.group(1)}{_ranges(rows)}{mt.group(2)}{100 * mape:.1f}%",
        text,
        count=1,
        flags=re.M,
    )
    if (n, m) != (1, 1):
        raise SystemExit(f"{path}: no calibrated {key} line to rewrite ({n}, {m})")
    return text


LAUNCH_GRID = tuple(i * 1e-8 for i in range(5001))
"""Launch costs a fit tries: 0 to 50 us by 10 ns."""


def _trial_preset(folder: Path, **values: float) -> str:
    """A preset file inheriting the LLM rows' chip with ``values`` set, for one trial of a fit."""
    path = folder / f"{LLM_PRESET}_{'_'.join(f'{v!r}' for v in values.values())}.toml"
    lines = [f'inherits = "{LLM_PRESET}"', *(f"{k} = {v!r}" for k, v in values.items())]
    path.write_text("\n".join([*lines, "[sources]", 'task_launch_s = "a trial value of the fit"'])
                    + "\n")  # fmt: skip
    return str(path)


def _llm_fit(dry_run: bool) -> None:
    """Fit ``ascend910b4``'s task_launch_s to the LLM rows (see the module docstring)."""
    import tempfile

    from _llm_rows import llm_rows

    from hetnpu.devices.presets import load_npu

    table = load_table()
    base_launch = load_npu(LLM_PRESET).task_launch_s
    with tempfile.TemporaryDirectory() as tmp:
        at_base = llm_rows(table)
        at_trial = llm_rows(table, chip=_trial_preset(Path(tmp), task_launch_s=TRIAL_LAUNCH_S))
    # value(d) = base + slope * (d - base_launch): slope = kernels launched per row
    lines = [
        (row, v0, (v1 - v0) / (TRIAL_LAUNCH_S - base_launch))
        for (row, v0), (_, v1) in zip(at_base, at_trial, strict=True)
    ]

    def value(line, d: float) -> float:
        _, v0, slope = line
        return v0 + slope * (d - base_launch)

    def mape(group, d: float) -> float:
        return sum(abs(value(ln, d) - ln[0].value) / ln[0].value for ln in group) / len(group)

    def fit(group) -> float:
        return min(LAUNCH_GRID, key=lambda d: (mape(group, d), d))

    best = fit(lines)
    rows = tuple(ln[0].index for ln in lines)
    print(
        f"{LLM_PRESET:<11} task_launch_s = {best * 1e6:7.3f} us  rows {len(rows):>3}  "
        f"MAPE at the fit {100 * mape(lines, best):5.1f}% (at {base_launch * 1e6:.3f} us: "
        f"{100 * mape(lines, base_launch):.1f}%)"
    )
    for ln in lines:
        row = ln[0]
        print(
            f"  row {row.index:>2} {row.model.split(' (')[0]:<12} {row.metric:<26} b{row.batch:<3}"
            f" {ln[2] / 1e3:6.0f} kernels  {value(ln, best):9.1f} ms vs {row.value:9.1f}"
        )
    models = sorted({ln[0].model for ln in lines})
    errs = []
    for left_out in models:
        d = fit([ln for ln in lines if ln[0].model != left_out])
        errs += [abs(value(ln, d) - ln[0].value) / ln[0].value for ln in lines
                 if ln[0].model == left_out]  # fmt: skip
    print(f"  leave-one-model-out (LLM rows): MAPE {100 * sum(errs) / len(errs):.1f}%")
    if not dry_run:
        write_launch(LLM_PRESET, best, rows, mape(lines, best))


def _host_fit(dry_run: bool) -> None:
    """Fit ``ascend910b4``'s host_op_s to the dynamic-shape rows (see the module docstring)."""
    import statistics

    from _llm_rows import llm_rows

    import hetnpu.whatif.llm as llm
    from hetnpu.devices.presets import load_npu

    # Every trial replays the same simulations: keep them all.
    llm._SIMULATED_MAX = 4096
    rows = [r for r in load_table() if "ChatGLM3" in r.model and r.unit == "ms"]
    base = load_npu(LLM_PRESET)
    tried: dict[float, float] = {}

    def mape(host_s: float) -> float:
        if host_s not in tried:
            spec = base.model_copy(update={"host_op_s": host_s})
            errs = [abs(v - r.value) / r.value for r, v in llm_rows(rows, chip=spec)]
            tried[host_s] = statistics.fmean(errs)
        return tried[host_s]

    coarse = min((i * 1e-6 for i in range(61)), key=lambda h: (mape(h), h))
    fine = (round(coarse + i * 1e-7, 13) for i in range(-10, 11))
    best = min((h for h in fine if h >= 0), key=lambda h: (mape(h), h))
    indices = tuple(r.index for r in rows)
    print(
        f"{LLM_PRESET:<11} host_op_s = {best * 1e6:6.1f} us  rows {len(indices):>3}  MAPE at the "
        f"fit {100 * mape(best):5.1f}% (without host scheduling: {100 * mape(0.0):.1f}%)"
    )
    if dry_run:
        return
    _rewrite(LLM_PRESET, "host_op_s", f"{best * 1e6:.1f}e-6", indices, mape(best))


ND2NZ_PRESET = "ascend910b"  # the 910B family's preset; ascend910b4 inherits the value
ND2NZ_COARSE = (0.6, 0.7, 0.8, 0.9, 1.0)


def _nd2nz_fit(dry_run: bool) -> None:
    """Fit the 910B's ``mte2_nd2nz_read_fraction`` to every row it moves: the 910B GEMM
    kernel times and the LLM rows, the 910B4's launch cost refit at each trial value (rows are
    linear in it, so one simulation per value at no launch cost and the kernel counts give
    the refit exactly). A coarse grid, then steps of 0.02 around its best."""
    import statistics
    import tempfile

    from _llm_rows import llm_rows

    from hetnpu.fidelity.predict import predict
    from hetnpu.fidelity.table import Target, target

    table = load_table()
    gemms = [t for t in (target(r) for r in table) if isinstance(t, Target)]
    gemms = [t for t in gemms if t.preset.startswith("ascend910b") and t.builder == "matmul"]
    with tempfile.TemporaryDirectory() as tmp:

        def llm_at(frac: float, launch: float) -> dict[int, float]:
            path = _trial_preset(Path(tmp), task_launch_s=launch, mte2_nd2nz_read_fraction=frac)
            return {row.index: v for row, v in llm_rows(table, chip=path)}

        zero = llm_at(1.0, 0.0)
        kernels = {
            i: (v - zero[i]) / TRIAL_LAUNCH_S for i, v in llm_at(1.0, TRIAL_LAUNCH_S).items()
        }
        measured = {r.index: r.value for r in table}
        tried: dict[float, tuple[float, float]] = {}

        def score(frac: float) -> tuple[float, float]:
            if frac not in tried:
                base = llm_at(frac, 0.0)

                def errs(launch: float) -> list[float]:
                    return [abs(v + kernels[i] * launch - measured[i]) / measured[i]
                            for i, v in base.items()]  # fmt: skip

                launch = min(LAUNCH_GRID, key=lambda d: (statistics.fmean(errs(d)), d))
                ov = {"mte2_nd2nz_read_fraction": frac}
                errs_all = errs(launch) + [predict(t, ov).error for t in gemms]
                tried[frac] = (statistics.fmean(errs_all), launch)
                print(f"  fraction {frac:.2f}: MAPE {100 * tried[frac][0]:5.2f}% "
                      f"(launch {launch * 1e6:.2f} us)", flush=True)  # fmt: skip
            return tried[frac]

        coarse = min(ND2NZ_COARSE, key=lambda f: (score(f)[0], f))
        fine = [round(coarse + 0.02 * i, 2) for i in range(-4, 5)]
        best = min((f for f in fine if 0 < f <= 1), key=lambda f: (score(f)[0], f))
    rows = tuple(sorted([*(t.row.index for t in gemms), *kernels]))
    mape = tried[best][0]
    print(f"{ND2NZ_PRESET:<11} mte2_nd2nz_read_fraction = {best:.2f}  rows {len(rows):>3}  "
          f"MAPE at the fit {100 * mape:5.1f}%")  # fmt: skip
    if dry_run:
        return
    _rewrite(ND2NZ_PRESET, "mte2_nd2nz_read_fraction", f"{best:.2f}", rows, mape)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the fit, write nothing")
    parser.add_argument("--llm", action="store_true", help="also fit ascend910b4 to the LLM rows")
    parser.add_argument(
        "--nd2nz",
        action="store_true",
        help="first fit the 910B's ND->NZ read fraction to its GEMM and LLM rows (minutes)",
    )
    parser.add_argument(
        "--host",
        action="store_true",
        help="first fit the 910B4 host's time per host-scheduled op to the ChatGLM3 rows",
    )
    args = parser.parse_args(argv)
    if args.host:
        _host_fit(args.dry_run)
    if args.nd2nz:
        _nd2nz_fit(args.dry_run)
    preds, _ = predict_table(load_table())
    fits = fit_overheads(preds)
    for preset, fit in fits.items():
        print(
            f"{preset:<11} task_launch_s = {fit.task_launch_s * 1e6:7.3f} us  "
            f"model_execute_s = {fit.model_execute_s * 1e6:6.1f} us  "
            f"rows {len(fit.rows):>3}  MAPE at the fit {100 * fit.mape:5.1f}%"
        )
    if not args.dry_run:
        write_presets(list(fits.values()))
    lomo = leave_one_model_out(preds)
    if lomo:
        errs = list(lomo.values())
        print(f"leave-one-model-out: rows {len(errs)}  MAPE {100 * sum(errs) / len(errs):.1f}%")
    if args.llm:
        _llm_fit(args.dry_run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
