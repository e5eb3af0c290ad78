"""Who runs what, when: place a graph's nodes on devices and cut it into an execution plan.

    import hetnpu
    g = hetnpu.load("model.onnx")
    plan = hetnpu.partition(g, devices=["npu", "cpu"], strategy="heft", chip="ascend910")
    plan.validate(); plan.export_stage(0)

The scheduler never imports the simulator: costs come through a small protocol
(:class:`~hetnpu.scheduler.evaluate.CostModel`), by default the analytical
:class:`~hetnpu.devices.roofline.RooflineCostModel`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import onnx

from hetnpu.graph.ir import Graph
from hetnpu.scheduler.evaluate import CostModel, as_cached, estimate_makespan
from hetnpu.scheduler.placement import STRATEGIES, AffinitySpec, Placement, place
from hetnpu.scheduler.plan import ExecutionPlan, Stage, TransData, Transfer, build_plan

__all__ = [
    "STRATEGIES",
    "CostModel",
    "ExecutionPlan",
    "Placement",
    "Stage",
    "TransData",
    "Transfer",
    "build_plan",
    "default_cost_model",
    "estimate_makespan",
    "partition",
    "place",
]


def default_cost_model(chip: Any = "ascend910", precision: str = "fp16") -> CostModel:
    """The roofline cost model of ``chip`` (a preset name, a TOML path or an ``NpuSpec``) with
    the generic CPU and GPU presets."""
    from hetnpu.devices.roofline import RooflineCostModel
    from hetnpu.scheduler._specs import host_specs, npu_spec

    cpu, gpu = host_specs()
    return RooflineCostModel(npu_spec(chip), cpu, gpu, precision=precision)


def partition(
    graph: Graph | str | os.PathLike[str] | onnx.ModelProto,
    devices: Sequence[str] | str = ("npu", "cpu"),
    strategy: str = "capability",
    chip: Any = "ascend910",
    affinity: AffinitySpec | None = None,
    fallback: bool = True,
    min_stage_size: int = 1,
    cost_model: CostModel | None = None,
    precision: str = "fp16",
) -> ExecutionPlan:
    """Place ``graph`` on ``devices`` and build its validated execution plan.

    Parameters
    ----------
    graph
        A loaded graph, or anything :func:`hetnpu.graph.load` takes.
    devices
        ``"npu"``, ``"sim-npu"``, ``"gpu"``, ``"cpu"`` in priority order (a list or
        ``"npu,cpu"``); ``cpu`` is always available as the fallback.
    strategy
        ``capability``, ``affinity``, ``heft`` or ``exact``.
    chip
        NPU preset name, TOML path or ``NpuSpec``, for the default cost model.
    affinity
        ``{pattern: device}`` pins by op type, node name or glob; later entries win.
    fallback
        Let nodes no listed accelerator runs fall back to the CPU; off, they are an error.
    min_stage_size
        Accelerator stages with fewer nodes run on the CPU.
    cost_model
        Overrides the roofline model built from ``chip``.
    precision
        NPU precision: ``fp16``, ``fp32`` or ``int8``.

    Returns
    -------
    ExecutionPlan

    Raises
    ------
    ConfigError
        Unknown device, strategy or chip; an affinity that matches nothing.
    UnsupportedOpError
        A pinned node its device cannot run; fallback needed but refused.

    Examples
    --------
    >>> plan = partition(g, devices=["npu", "cpu"], strategy="heft")  # doctest: +SKIP
    >>> [(s.device, len(s.nodes)) for s in plan.stages]                # doctest: +SKIP
    [('npu', 38), ('cpu', 1), ('npu', 2)]
    """
    if not isinstance(graph, Graph):
        from hetnpu.graph import load

        graph = load(graph)
    # One memo of op and transfer costs serves placement, the plan and its makespan estimate.
    costs = as_cached(
        graph, cost_model if cost_model is not None else default_cost_model(chip, precision)
    )
    placement = place(
        graph,
        devices,
        strategy=strategy,
        cost_model=costs,
        affinity=affinity,
        fallback=fallback,
        precision=precision,
    )
    plan = build_plan(
        graph,
        placement.assignment,
        fallbacks=placement.fallbacks,
        strategy=strategy,
        cost_model=costs,
        min_stage_size=min_stage_size,
        precision=precision,
    )
    plan.validate()
    return plan
