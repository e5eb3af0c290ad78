"""``hetnpu info``: what a model is made of: ops, parameters, work, memory, shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hetnpu.atomic import atomic_write_text
from hetnpu.cli.app import app
from hetnpu.cli.options import InputShapeOpt, parse_input_shapes
from hetnpu.errors import ConfigError
from hetnpu.graph.control import ControlOptions


def _human(n: float, unit: str = "") -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {prefix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def _bytes(n: float) -> str:
    for scale, prefix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= scale:
            return f"{n / scale:.3g} {prefix}"
    return f"{n:.0f} B"


@app.command()
def info(
    model: Annotated[
        str, typer.Argument(help="An .onnx file, or a model name (hetnpu models list).")
    ],
    input_shape: InputShapeOpt = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the figures and per-node details as JSON.")
    ] = None,
    devices: Annotated[
        str | None,
        typer.Option(
            "--devices", help="Comma-separated device kinds (npu,gpu,cpu): who can run what."
        ),
    ] = None,
    branch: BranchOpt = None,
    trips: TripsOpt = None,
) -> None:
    """Show a model's ops, parameters, MACs/FLOPs, activation memory and I/O shapes.

    If/Loop/Scan nodes count the work of what they run: the branch or trip count known from
    constants, else the one given with --branch/--trips, else the larger branch (both listed).
    """
    from hetnpu import models
    from hetnpu.graph import load
    from hetnpu.graph.stats import model_stats

    # A file, or a model-zoo name, as `hetnpu simulate` takes it.
    graph = load(models.source(model), input_shapes=parse_input_shapes(input_shape))
    control = parse_control(branch, trips)
    control.check(graph)
    verdicts = None
    kinds = [d.strip() for d in (devices or "").split(",") if d.strip()]
    if kinds:
        from hetnpu.devices.capability import capability_table

        verdicts = capability_table(graph, kinds)  # a bad device kind fails before any output
    stats = model_stats(graph, control=control)
    console = Console()
    console.print(
        f"[bold]{model}[/bold]  graph {stats.name!r}, {stats.nodes} nodes, opsets {stats.opsets}"
    )
    for kind, io in (("input", stats.inputs), ("output", stats.outputs)):
        for name, meta in io.items():
            console.print(f"  {kind:6} {name}: {meta['dtype']} {meta['shape']}")
    console.print(
        f"  parameters {_human(stats.parameters)} ({_bytes(stats.parameter_bytes)}), "
        f"MACs {_human(stats.macs)}, FLOPs {_human(stats.flops)}"
    )
    console.print(
        f"  activations {_bytes(stats.activation_bytes)} in all, "
        f"peak live {_bytes(stats.peak_activation_bytes)} (ops run one at a time)"
    )
    table = Table(
        "op type", "count", title="ops (constant-folded nodes excluded)", title_justify="left"
    )
    for op, count in stats.op_histogram.items():
        table.add_row(op, str(count))
    console.print(table)
    payload = stats.to_dict(graph, control=control)
    flow = _print_control(console, graph, control)
    if flow:
        payload["control_flow"] = flow
    if verdicts is not None:
        _print_capability(console, graph, kinds, verdicts)
        payload["capability"] = {
            node: {dev: {"supported": v.supported, "reason": v.reason} for dev, v in per.items()}
            for node, per in verdicts.items()
        }
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(payload, indent=1, sort_keys=True) + "\n")
        console.print(f"wrote {json_out}")


BranchOpt = Annotated[
    list[str] | None,
    typer.Option("--branch", help="The branch an If takes, NODE=then|else (repeatable)."),
]
TripsOpt = Annotated[
    list[str] | None,
    typer.Option("--trips", help="The trip count of a Loop or Scan, NODE=N (repeatable)."),
]


def parse_control(branch: list[str] | None, trips: list[str] | None) -> ControlOptions:
    """``--branch NODE=then|else`` and ``--trips NODE=N`` as :class:`ControlOptions`."""
    branches: dict[str, str] = {}
    counts: dict[str, int] = {}
    for option, items, out in (("--branch", branch, branches), ("--trips", trips, counts)):
        for item in items or []:
            name, sep, raw = item.partition("=")
            if not sep or not name.strip() or not raw.strip():
                raise ConfigError(f"{option} {item!r}: expected NODE=VALUE")
            if option == "--trips":
                try:
                    out[name.strip()] = int(raw)
                except ValueError:
                    raise ConfigError(f"--trips {item!r}: {raw!r} is not a whole number") from None
            else:
                out[name.strip()] = raw.strip()
    return ControlOptions(branches=branches, trips=counts)


def _print_control(console: Console, graph, control: ControlOptions) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from hetnpu.graph.control import describe
    from hetnpu.graph.cost_control import control_nodes

    found = control_nodes(graph, control)
    if not found:
        return {}
    rules = {
        "constant": "known condition/trip count",
        "fed": "known from fed values",
        "chosen": "as chosen",
        "shapes": "trips from input lengths",
        "both": "unknown: the larger shown",
        "unknown": "unknown trip count",
    }
    table = Table(
        "node", "op", "rule", "counted", "MACs of each", title="control flow", title_justify="left"
    )
    out: dict[str, Any] = {}
    for name, cost in found.items():
        sel = cost.selection
        each = ", ".join(
            f"{run.attr} x{run.trips}: {_human(m)}"
            for run, m in zip(sel.runs, cost.macs, strict=False)
        )
        table.add_row(
            name,
            sel.op_type,
            rules[sel.rule] + (f" ({sel.note})" if sel.note else ""),
            f"{sel.chosen.attr} x{sel.chosen.trips}" if sel.runs else "-",
            cost.error or each,
        )
        out[name] = {
            **(describe(sel) if sel.runs else {"rule": sel.rule}),
            "macs": list(cost.macs),
            "error": cost.error,
        }
    console.print(table)
    return out


def _print_capability(console: Console, graph, kinds, verdicts) -> None:  # type: ignore[no-untyped-def]
    for dev in kinds:
        runnable = sum(1 for n in graph if verdicts[n.name][dev].supported)
        console.print(f"  {dev}: runs {runnable} of {len(graph)} nodes")
    table = Table(
        "node", "op type", *kinds, title="nodes some device cannot run", title_justify="left"
    )
    shown = 0
    for node in graph:
        per = verdicts[node.name]
        if all(v.supported for v in per.values()):
            continue
        shown += 1
        table.add_row(
            node.name,
            node.op_type,
            *("yes" if per[d].supported else f"no: {per[d].reason}" for d in kinds),
        )
    if shown:
        console.print(table)
