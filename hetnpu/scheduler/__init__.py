"""Who runs what, when: place a graph's nodes on devices and cut it into an execution plan.

    import hetnpu
    g = hetnpu.load("model.onnx")
    plan = hetnpu.partition(g, devices=["npu", "cpu"], strategy="heft", chip="ascend910")
    plan.validate(); plan.export_stage(0)

Costs come through a small protocol (:class:`~hetnpu.scheduler.evaluate.CostModel`), by
default the analytical :class:`~hetnpu.devices.roofline.RooflineCostModel`. Other models are
injected by the caller: :func:`hetnpu.partition` builds the cycle-level one
(:class:`hetnpu.simulator.costmodel.SimulatorCostModel`) when asked, since the scheduler never
imports the simulator.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import onnx

from hetnpu.devices.names import DEFAULT_DEVICES
from hetnpu.graph.ir import Graph
from hetnpu.scheduler.evaluate import CostModel, as_cached, estimate_makespan
from hetnpu.scheduler.placement import (
    STRATEGIES,
    AffinitySpec,
    Placement,
    normalize_devices,
    place,
)
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


def default_cost_model(
    chip: Any = "ascend910",
    precision: str = "fp16",
    *,
    cpu: Any = None,
    gpu: Any = None,
) -> CostModel:
    """The analytical cost model placement uses unless given another.

    Parameters
    ----------
    chip
        NPU preset name, TOML path or ``NpuSpec``.
    precision
        NPU precision: ``fp16``, ``fp32`` or ``int8``.
    cpu, gpu
        ``CpuSpec``/``GpuSpec`` or preset names; default the generic ``cpu_x86`` and
        ``gpu_datacentre`` presets.

    Raises
    ------
    ConfigError
        Unknown preset or precision.
    """
    from hetnpu.devices.presets import cpu_spec, gpu_spec, npu_spec
    from hetnpu.devices.roofline import RooflineCostModel

    return RooflineCostModel(npu_spec(chip), cpu_spec(cpu), gpu_spec(gpu), precision=precision)


def partition(
    graph: Graph | str | os.PathLike[str] | onnx.ModelProto,
    devices: Sequence[str] | str = DEFAULT_DEVICES,
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
    >>> from hetnpu import models
    >>> mlp = models.build("mlp", batch=4)
    >>> plan = partition(mlp, devices=["npu", "cpu"], strategy="heft")
    >>> [(s.device, len(s.nodes)) for s in plan.stages]
    [('npu', 6)]
    >>> plan = partition(mlp, ["npu", "cpu"], strategy="affinity", affinity={"Softmax": "cpu"})
    >>> [(s.device, len(s.nodes)) for s in plan.stages]
    [('npu', 5), ('cpu', 1)]
    """
    normalize_devices(devices)  # a typo in the device list fails before any loading
    if not isinstance(graph, Graph):
        from hetnpu.graph import load

        graph = load(graph)
    if cost_model is None:
        cost_model = default_cost_model(chip, precision)
    return _partition(
        graph, devices, strategy, affinity, fallback, min_stage_size, cost_model, precision
    )


def _partition(
    graph: Graph,
    devices: Sequence[str] | str,
    strategy: str,
    affinity: AffinitySpec | None,
    fallback: bool,
    min_stage_size: int,
    cost_model: CostModel,
    precision: str,
) -> ExecutionPlan:
    # One memo of op and transfer costs serves placement, the plan and its makespan estimate.
    costs = as_cached(graph, cost_model)
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
