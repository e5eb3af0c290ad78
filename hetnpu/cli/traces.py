"""``hetnpu summary``, ``report``, ``trace-diff`` and ``trace-check``: read traces written by
``hetnpu simulate --trace``, a runtime profile, or onnxruntime's profiler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hetnpu.atomic import atomic_write_text
from hetnpu.cli.app import app
from hetnpu.errors import ConfigError

TraceArg = Annotated[
    Path,
    typer.Argument(
        help="A trace: hetnpu or onnxruntime JSON, msprof op_summary/op_statistic CSV or "
        "timeline JSON, torch_npu kernel_details.csv or trace_view.json."
    ),
]
TopOpt = Annotated[int, typer.Option("--top", min=1, help="Rows to print.")]


def _fmt(v: float | None, spec: str = ".4g") -> str:
    return "-" if v is None else format(v, spec)


@app.command()
def summary(
    trace: TraceArg,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write every op's row (op_summary) as CSV.")
    ] = None,
    top: TopOpt = 15,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="hetnpu: the --csv table below; msprof: op_summary_0.csv and "
            "op_statistic_0.csv in msprof's schema, into --output.",
        ),
    ] = "hetnpu",
    out_dir: Annotated[
        Path | None, typer.Option("-o", "--output", help="Directory for --format msprof.")
    ] = None,
) -> None:
    """Print the longest ops of TRACE and each unit's utilisation (msprof op_summary style).

    TRACE is a hetnpu or onnxruntime trace, or a real profile: msprof op_summary /
    op_statistic CSV or timeline JSON, torch_npu kernel_details.csv or trace_view.json.
    """
    from hetnpu.traces.read import read_trace
    from hetnpu.traces.summary import op_summary, unit_utilisation, write_op_summary_csv

    if fmt not in ("hetnpu", "msprof"):
        raise ConfigError(f"--format {fmt!r}: expected hetnpu or msprof")
    if fmt == "msprof" and out_dir is None:
        raise ConfigError("--format msprof needs -o/--output DIR for its CSV files")
    tr = read_trace(trace)
    rows = write_op_summary_csv(tr, csv_out) if csv_out else op_summary(tr)
    if fmt == "msprof":
        from hetnpu.traces.msprof_write import write_msprof

        for path in write_msprof(tr, out_dir):
            print(f"wrote {path}")
    console = Console()
    console.print(f"[bold]{trace}[/bold] ({tr.kind}): {len(rows)} ops, {tr.wall_us:.6g} µs")
    if not rows:
        # A measured run records per-kernel spans only where onnxruntime's profiler ran.
        hint = ""
        if any(u.device == "sim-npu" for u in tr.units):
            hint = (
                "; sim-npu records each stage as one span (`hetnpu simulate MODEL --trace "
                "FILE` times every op on the simulated chip)"
            )
        console.print(f"no op spans in this trace: the units table lists what it holds{hint}")
    table = Table(
        "op", "type", "device", "cores", "start µs", "µs", "util", "bound", title="longest ops"
    )
    for r in sorted(rows, key=lambda r: (-r["duration_us"], r["op"]))[:top]:
        table.add_row(
            r["op"],
            r["type"],
            r["device"],
            str(r["cores"]),
            _fmt(r["start_us"], ".6g"),
            _fmt(r["duration_us"]),
            _fmt(r["utilisation"], ".1%"),
            r["bound"] or "-",
        )
    console.print(table)
    from hetnpu.traces.breakdown import time_by_mechanism

    mech = time_by_mechanism(tr)
    total = sum(mech.values())
    if total > 0:
        console.print(
            "time by mechanism: "
            + ", ".join(f"{m} {us:.6g} µs ({us / total:.1%})" for m, us in mech.items() if us)
        )
    units = Table("device", "unit", "lanes", "busy µs", "utilisation", title="units")
    for u in unit_utilisation(tr):
        units.add_row(
            u["device"],
            u["unit"],
            str(u["lanes"]),
            _fmt(u["busy_us"], ".6g"),
            _fmt(u["utilisation"], ".1%"),
        )
    console.print(units)
    if csv_out:
        console.print(f"wrote {csv_out}")


@app.command()
def report(
    trace: TraceArg,
    out: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")],
    title: Annotated[str | None, typer.Option("--title", help="Page title.")] = None,
) -> None:
    """Write a self-contained HTML report of TRACE (works offline)."""
    from hetnpu.traces.report import write_report

    size = write_report(trace, out, title)
    print(f"wrote {out} ({size / 1e6:.2f} MB)")


@app.command("trace-diff")
def trace_diff(
    base: Annotated[
        Path, typer.Argument(help="The baseline: a real profile (msprof, torch_npu) or a trace.")
    ],
    new: Annotated[Path, typer.Argument(help="The trace to compare with it, e.g. simulated.")],
    top: TopOpt = 15,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every op and unit difference as JSON.")
    ] = None,
) -> None:
    """Op by op, NEW against BASE: ops matched by name, else by op family and order; per op
    and per family the new/base (sim/real) ratio and the mechanism that dominates each side;
    the ops that explain most of the gap; per-unit differences."""
    from hetnpu.traces.compare import compare_runs
    from hetnpu.traces.read import read_trace
    from hetnpu.traces.summary import diff_traces

    a, b = read_trace(base), read_trace(new)
    d, c = diff_traces(a, b), compare_runs(a, b)
    console = Console()
    delta = d.new_us - d.base_us
    console.print(
        f"total {d.base_us:.6g} µs -> {d.new_us:.6g} µs ({delta:+.6g} µs); "
        f"{len(d.changed())} of {len(d.ops)} ops changed"
    )
    console.print(
        f"{len(c.ops)} ops matched ({sum(p['matched_by'] == 'name' for p in c.ops)} by name): "
        f"{c.real_us:.6g} µs -> {c.sim_us:.6g} µs, new/base {_fmt(c.ratio, '.3f')}; "
        f"unmatched: {len(c.unmatched_real)} in base, {len(c.unmatched_sim)} in new"
    )
    _print_matches(console, c, top)
    units = Table("unit", "base busy µs", "new busy µs", "Δ µs", "util base -> new", title="units")
    for u in d.units:
        units.add_row(
            u["unit"],
            _fmt(u["base_busy_us"], ".6g"),
            _fmt(u["new_busy_us"], ".6g"),
            _fmt(u["delta_us"], "+.6g"),
            f"{u['base_utilisation']:.1%} -> {u['new_utilisation']:.1%}",
        )
    console.print(units)
    if json_out is not None:
        payload = {
            "base_us": d.base_us,
            "new_us": d.new_us,
            "ops": d.ops,
            "units": d.units,
            "matched": c.to_json(),
        }
        atomic_write_text(json_out, json.dumps(payload, indent=1, sort_keys=True) + "\n")


def _print_matches(console: Console, c: Any, top: int) -> None:
    table = Table(
        "op (base -> new)",
        "type",
        "base µs",
        "new µs",
        "Δ µs",
        "new/base",
        "mechanism base -> new",
        "by",
        title="ops by impact",
    )
    for p in c.ops[:top]:
        name = p["sim"] if p["real"] == p["sim"] else f"{p['real']} -> {p['sim']}"
        table.add_row(
            name,
            p["real_type"]
            if p["real_type"] == p["sim_type"]
            else f"{p['real_type']}/{p['sim_type']}",
            _fmt(p["real_us"], ".6g"),
            _fmt(p["sim_us"], ".6g"),
            _fmt(p["delta_us"], "+.6g"),
            _fmt(p["ratio"], ".3f"),
            f"{p['real_mechanism'] or '-'} -> {p['sim_mechanism'] or '-'}",
            p["matched_by"],
        )
    console.print(table)
    fams = Table(
        "family",
        "ops",
        "base µs",
        "new µs",
        "new/base",
        "mechanism base -> new",
        title="op families",
    )
    for t in c.types:
        fams.add_row(
            t["family"],
            str(t["count"]),
            _fmt(t["real_us"], ".6g"),
            _fmt(t["sim_us"], ".6g"),
            _fmt(t["ratio"], ".3f"),
            f"{t['real_mechanism'] or '-'} -> {t['sim_mechanism'] or '-'}",
        )
    console.print(fams)
    if c.gap:
        console.print(
            f"{len(c.gap)} op(s) explain {c.gap[-1]['cumulative']:.0%} of the gap: "
            + "; ".join(f"{p['sim']} {p['delta_us']:+.4g} µs ({p['share']:.0%})" for p in c.gap)
        )
    for side, names in (("base", c.unmatched_real), ("new", c.unmatched_sim)):
        if names:
            more = f" and {len(names) - 8} more" if len(names) > 8 else ""
            console.print(f"only in {side}: {', '.join(names[:8])}{more}")


@app.command("trace-check")
def trace_check(
    traces: Annotated[list[Path], typer.Argument(help="Chrome trace JSON files.")],
) -> None:
    """Check traces against Perfetto's import rules; exit 1 listing problems if any."""
    from hetnpu.traces.validate import validate_trace

    bad = 0
    for path in traces:
        errors = validate_trace(path)
        if errors:
            bad += 1
            print(f"{path}: {len(errors)} problem(s)")
            for e in errors[:20]:
                print(f"  {e}")
        else:
            print(f"{path}: ok")
    if bad:
        raise typer.Exit(code=1)
