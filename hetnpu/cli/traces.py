"""``hetnpu summary``, ``report``, ``trace-diff`` and ``trace-check``: read traces written by
``hetnpu simulate --trace``, a runtime profile, or onnxruntime's profiler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hetnpu.atomic import atomic_write_text
from hetnpu.cli.app import app

TraceArg = Annotated[Path, typer.Argument(help="A Chrome trace JSON (hetnpu or onnxruntime).")]
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
) -> None:
    """Print the longest ops of TRACE and each unit's utilisation (msprof op_summary style)."""
    from hetnpu.traces.read import read_trace
    from hetnpu.traces.summary import op_summary, unit_utilisation, write_op_summary_csv

    tr = read_trace(trace)
    rows = write_op_summary_csv(tr, csv_out) if csv_out else op_summary(tr)
    console = Console()
    console.print(f"[bold]{trace}[/bold] ({tr.kind}): {len(rows)} ops, {tr.wall_us:.6g} µs")
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
    base: Annotated[Path, typer.Argument(help="The baseline trace.")],
    new: Annotated[Path, typer.Argument(help="The trace to compare with it.")],
    top: TopOpt = 15,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every op and unit difference as JSON.")
    ] = None,
) -> None:
    """Per-op and per-unit differences of NEW against BASE, largest first."""
    from hetnpu.traces.summary import diff_traces

    d = diff_traces(base, new)
    console = Console()
    delta = d.new_us - d.base_us
    console.print(
        f"total {d.base_us:.6g} µs -> {d.new_us:.6g} µs ({delta:+.6g} µs); "
        f"{len(d.changed())} of {len(d.ops)} ops changed"
    )
    table = Table("op", "type", "base µs", "new µs", "Δ µs", "ratio", title="ops by impact")
    for r in d.ops[:top]:
        table.add_row(
            r["op"],
            r["type"],
            _fmt(r["base_us"], ".6g"),
            _fmt(r["new_us"], ".6g"),
            _fmt(r["delta_us"], "+.6g"),
            _fmt(r["ratio"], ".3f"),
        )
    console.print(table)
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
        payload = {"base_us": d.base_us, "new_us": d.new_us, "ops": d.ops, "units": d.units}
        atomic_write_text(json_out, json.dumps(payload, indent=1, sort_keys=True) + "\n")


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
