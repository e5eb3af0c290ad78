"""``hetnpu partition``: split a model across devices and show (or write) the plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hetnpu.atomic import atomic_write_bytes, atomic_write_text
from hetnpu.cli.app import app
from hetnpu.cli.options import InputShapeOpt, StrategyOpt, parse_input_shapes

_EXAMPLES = """
Examples:

  hetnpu partition model.onnx --devices npu,cpu

  hetnpu partition model.onnx --devices npu,gpu,cpu --strategy heft

  hetnpu partition model.onnx --devices npu,cpu --affinity 'Softmax=cpu' --affinity '/head/*=cpu'

  hetnpu partition model.onnx --devices npu,cpu -o plan/
"""


@app.command(epilog=_EXAMPLES)
def partition(
    model: Annotated[
        str, typer.Argument(help="An .onnx file, or a model name (hetnpu models list).")
    ],
    devices: Annotated[
        str, typer.Option("--devices", help="Devices in priority order: npu, sim-npu, gpu, cpu.")
    ] = "npu,cpu",
    strategy: StrategyOpt = "capability",
    affinity: Annotated[
        list[str] | None,
        typer.Option(
            "--affinity",
            help="Pin nodes, PATTERN=DEVICE: op type, node name or glob (repeatable; last wins).",
        ),
    ] = None,
    no_fallback: Annotated[
        bool, typer.Option("--no-fallback", help="Fail instead of running unsupported ops on CPU.")
    ] = False,
    min_stage_size: Annotated[
        int, typer.Option("--min-stage-size", min=1, help="Smaller accelerator stages run on CPU.")
    ] = 1,
    chip: Annotated[
        str, typer.Option("--chip", help="NPU preset name or TOML path.")
    ] = "ascend910",
    precision: Annotated[
        str, typer.Option("--precision", help="NPU precision: fp16 or fp32.")
    ] = "fp16",
    input_shape: InputShapeOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Write plan.json, stage_<k>_<device>.onnx, partition.dot/.html here.",
        ),
    ] = None,
) -> None:
    """Partition MODEL across devices; print stages, transfers, TransData, fallbacks, makespan."""
    from hetnpu import models
    from hetnpu.graph import load
    from hetnpu.scheduler import partition as run_partition
    from hetnpu.scheduler.placement import normalize_devices, parse_affinity
    from hetnpu.scheduler.render import summary, to_dot, to_html

    listed, _ = normalize_devices(devices)  # fail on a bad device before loading the model
    pins = parse_affinity(affinity or [])
    graph = load(models.source(model), input_shapes=parse_input_shapes(input_shape))
    plan = run_partition(
        graph,
        devices=devices,
        strategy="affinity" if pins and strategy == "capability" else strategy,
        chip=chip,
        affinity=pins or None,
        fallback=not no_fallback,
        min_stage_size=min_stage_size,
        precision=precision,
    )
    typer.echo(summary(plan))
    if output is None:
        return
    import json

    atomic_write_text(output / "plan.json", json.dumps(plan.to_json(), indent=1) + "\n")
    for stage in plan.stages:
        proto = plan.export_stage(stage.id)
        atomic_write_bytes(
            output / f"stage_{stage.id}_{stage.device}.onnx", proto.SerializeToString()
        )
    atomic_write_text(output / "partition.dot", to_dot(plan))
    atomic_write_text(output / "partition.html", to_html(plan))
    typer.echo(
        f"wrote {output}/: plan.json, {len(plan.stages)} stage model(s), partition.dot, "
        f"partition.html (devices {', '.join(listed)})"
    )
