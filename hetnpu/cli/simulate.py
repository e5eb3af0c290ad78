"""``hetnpu simulate``: time a model on a simulated Ascend chip and summarise where time goes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hetnpu.atomic import atomic_write_text
from hetnpu.cli.app import app
from hetnpu.cli.info import BranchOpt, TripsOpt, parse_control
from hetnpu.cli.options import InputShapeOpt, parse_input_shapes
from hetnpu.errors import ConfigError


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` chip overrides; values become int, float, bool or an int tuple."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key or not raw:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        out[key] = _value(raw)
    return out


def _value(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if "," in raw:
        try:
            return tuple(int(v) for v in raw.split(","))
        except ValueError:
            return raw
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def _load_model(model: str, shapes: dict[str, list[int]] | None, batch: int | None) -> Any:
    from hetnpu import models
    from hetnpu.graph import load

    source = models.source(model, batch=batch or 1)  # a file, or a model-zoo name
    if batch is not None:
        probe = load(source, require_static=False)
        bound = dict(shapes or {})
        for name in probe.inputs:
            shape = list(bound.get(name) or probe.tensors[name].shape or ())
            if not shape:
                raise ConfigError(f"--batch: input {name!r} has no batch dimension")
            bound[name] = [batch, *shape[1:]]
        shapes = bound
    return load(source, input_shapes=shapes)


def _human_bytes(n: float) -> str:
    for scale, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


@app.command()
def simulate(
    model: Annotated[str, typer.Argument(help="An .onnx file (or a hetnpu.models name).")],
    chip: Annotated[str, typer.Option("--chip", help="Chip preset name or TOML path.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a chip parameter by spec field, KEY=VALUE."),
    ] = None,
    input_shape: InputShapeOpt = None,
    batch: Annotated[
        int | None, typer.Option("--batch", min=1, help="Rebind dim 0 of inputs.")
    ] = None,
    precision: Annotated[str, typer.Option("--precision", help="fp16, fp32 or int8.")] = "fp16",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the summary as JSON.")
    ] = None,
    trace: Annotated[Path | None, typer.Option("--trace", help="Write a Chrome trace.")] = None,
    trace_level: Annotated[str, typer.Option("--trace-level", help="op or instr.")] = "op",
    check: Annotated[
        bool, typer.Option("--check", help="Check every op against its roofline bound.")
    ] = False,
    no_double_buffer: Annotated[
        bool, typer.Option("--no-double-buffer", help="One slot per buffer (no ping-pong).")
    ] = False,
    max_events: Annotated[
        int | None,
        typer.Option("--max-events", min=1, help="Refuse a run needing more SimPy events."),
    ] = None,
    devices: Annotated[
        str | None,
        typer.Option(
            "--devices",
            help="Simulate the whole system partitioned over these devices, e.g. npu,cpu.",
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy", help="Placement for --devices: capability, affinity, heft, exact."
        ),
    ] = None,
    branch: BranchOpt = None,
    trips: TripsOpt = None,
) -> None:
    """Simulate MODEL on an Ascend chip, cycle by cycle, and summarise the run.

    With --devices (or --strategy) the model is partitioned first and the whole system runs
    on one timeline: NPU stages cycle by cycle, CPU/GPU stages by roofline, transfers on
    their links.
    """
    from hetnpu import chips
    from hetnpu.simulator import simulate as run_sim

    if trace_level not in ("op", "instr"):
        raise ConfigError(f"--trace-level {trace_level!r}: expected op or instr")
    spec = chips.load(chip, overrides=parse_sets(set_) or None)
    graph = _load_model(model, parse_input_shapes(input_shape), batch)
    batch = batch or graph.batch  # as --input-shape or the file bound it
    control = parse_control(branch, trips)
    if devices is not None or strategy is not None:
        from hetnpu.cli.system_summary import run_system

        run_system(
            graph,
            spec,
            devices=devices or "npu,cpu",
            strategy=strategy or "capability",
            precision=precision,
            json_out=json_out,
            trace=trace,
            trace_level=trace_level,
            batch=batch or 1,
            model=model,
        )
        return
    err = Console(stderr=True)
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        # Off a terminal the bar would only leave an empty line on stderr.
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("ops", total=len(graph))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        res = run_sim(
            graph,
            spec,
            precision=precision,
            double_buffer=not no_double_buffer,
            trace_level=trace_level if trace else None,
            max_events=max_events,
            progress=progress,
            branches=control.branches,
            trips=control.trips,
        )
    _print_summary(Console(), res, batch or 1, model)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(res.to_summary(), indent=1, sort_keys=True) + "\n")
    if trace is not None:
        from hetnpu.traces import write_chrome_trace

        write_chrome_trace(res, trace, trace_level, graph=graph, spec=spec)
    if check:
        _report_check(res)


def _print_summary(console: Console, res: Any, batch: int, model: str) -> None:
    lat = res.latency_s
    console.print(
        f"[bold]{model}[/bold] on {res.chip} ({res.precision}): {res.cycles:,} cycles = "
        f"{lat * 1e3:.4g} ms on the device, {batch / lat if lat else 0:,.1f} inferences/s at "
        f"batch {batch}"
    )
    console.print(
        f"HBM {_human_bytes(res.hbm_bytes)}, achieved {res.hbm_bytes / lat / 1e9 if lat else 0:.4g}"
        f" GB/s; {res.events:,} SimPy events in {res.wall_s:.3g} s"
    )
    console.print("unit busy: " + ", ".join(f"{u} {b:.1%}" for u, b in res.unit_busy.items()))
    if res.launch_cycles:
        kernels = sum(1 for o in res.ops if o.launch_cycles)
        console.print(
            f"kernel launches: {kernels} x {res.spec.task_launch_s * 1e6:.3g} us = "
            f"{res.launch_cycles / res.clock_hz * 1e3:.4g} ms "
            f"({res.launch_cycles / res.cycles:.1%} of the run)"
        )
    if res.execute_s:
        host = res.execute_latency_s
        console.print(
            f"as the host times one aclmdlExecute: {host * 1e3:.4g} ms "
            f"(+{res.execute_s * 1e6:.3g} us model_execute_s), {batch / host:,.1f} inferences/s"
        )
    table = Table(
        "op",
        "type",
        "cycles",
        "share",
        "bound",
        "sim/roofline",
        "mechanism",
        title="costliest ops",
        title_justify="left",
    )
    from hetnpu.traces.attribution import op_mechanism

    mechanism = {o.name: op_mechanism(o) for o in res.ops}
    for row in res.op_table(10):
        ratio = row["roofline_ratio"]
        table.add_row(
            row["name"],
            row["type"],
            f"{row['cycles']:,}",
            f"{row['share']:.1%}",
            row["bound"],
            "-" if ratio == float("inf") else f"{ratio:.2f}",
            mechanism[row["name"]] or "-",
        )
    console.print(table)
    if res.unsupported:
        console.print(f"{len(res.unsupported)} ops the NPU cannot run (not timed):")
        for u in res.unsupported[:10]:
            console.print(f"  {u.name} ({u.op_type}): {u.reason}")


def _report_check(res: Any) -> None:
    from hetnpu.traces.attribution import op_mechanism, result_time_parts

    parts = result_time_parts(res.ops)
    total = sum(parts.values()) or 1
    print(
        "check: time by mechanism: "
        + ", ".join(f"{m} {c / total:.1%}" for m, c in parts.items() if c)
    )
    for o in sorted(res.ops, key=lambda o: (-(o.launch_cycles + o.cycles), o.index))[:5]:
        if not o.launch_cycles + o.cycles:
            break
        print(
            f"check: {o.name} ({o.op_type}) {o.launch_cycles + o.cycles:,} cycles, "
            f"{op_mechanism(o) or '-'}"
        )
    bad = res.check_violations()
    timed = [o for o in res.ops if o.roofline_cycles > 0]
    if timed:
        lo = min(timed, key=lambda o: o.roofline_ratio)
        print(
            f"check: {len(timed)} ops against their roofline bound; tightest "
            f"{lo.name} at {lo.roofline_ratio:.3f}x"
        )
    for o in bad:
        print(
            f"check FAILED: {o.name} ({o.op_type}) {o.cycles} cycles < roofline "
            f"{o.roofline_cycles} (compute {o.compute_bound_cycles}, "
            f"memory {o.memory_bound_cycles})"
        )
    if bad:
        raise typer.Exit(code=1)
