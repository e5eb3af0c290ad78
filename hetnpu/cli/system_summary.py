"""``hetnpu simulate --devices ...``: the whole partitioned system on one timeline, summarised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hetnpu.atomic import atomic_write_text
from hetnpu.graph.ir import Graph
from hetnpu.traces import write_trace


def run_system(
    graph: Graph,
    spec: Any,
    *,
    devices: str,
    strategy: str,
    precision: str,
    json_out: Path | None,
    trace: Path | None,
    trace_level: str,
    batch: int,
    model: str,
) -> None:
    """Partition ``graph`` over ``devices``, simulate the system and print/write its summary."""
    from hetnpu.api import simulate_system

    res = simulate_system(
        graph,
        spec,
        devices=devices,
        strategy=strategy,
        precision=precision,
        trace_level=trace_level if trace else None,
    )
    print_system(Console(), res, batch, model)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(res.to_summary(), indent=1, sort_keys=True) + "\n")
    if trace is not None:
        write_trace(res, trace)


def print_system(console: Console, res: Any, batch: int, model: str) -> None:
    span = res.makespan_s
    est = res.estimated_makespan_s
    console.print(
        f"[bold]{model}[/bold] on {res.chip} + host ({res.precision}, {res.strategy}): "
        f"makespan {span * 1e3:.4g} ms, {batch / span if span else 0:,.1f} inferences/s at "
        f"batch {batch}" + (f"; plan estimate {est * 1e3:.4g} ms" if est else "")
    )
    stages = Table("stage", "device", "ops", "start ms", "end ms", "TransData ms", "NPU cycles")
    for s in res.stages:
        stages.add_row(
            str(s.id),
            s.device,
            str(s.ops),
            f"{s.start_s * 1e3:.4g}",
            f"{s.end_s * 1e3:.4g}",
            f"{s.transdata_s * 1e3:.3g}",
            "-" if s.npu_cycles is None else f"{s.npu_cycles:,}",
        )
    console.print(stages)
    moved = [t for t in res.transfers if t.hops]
    if moved:
        total = sum(t.bytes for t in moved)
        busy = sum(t.end_s - t.start_s for t in moved)
        console.print(
            f"{len(moved)} transfers, {total:,} bytes, {busy * 1e3:.3g} ms on links "
            f"({', '.join(sorted({t.link for t in moved}))})"
        )
    console.print("busy: " + ", ".join(f"{k} {v:.1%}" for k, v in res.device_busy().items()))
    for s in res.stages:
        if s.roofline_ops:
            console.print(
                f"stage {s.id}: {len(s.roofline_ops)} ops timed by the NPU roofline "
                f"(the simulator cannot lower them): {', '.join(s.roofline_ops[:5])}"
            )
