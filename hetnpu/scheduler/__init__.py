"""Who runs what, when: place a graph's nodes on devices and cut it into an execution plan.

    import hetnpu
    g = hetnpu.load("model.onnx")
    plan = hetnpu.partition(g, devices=["npu", "cpu"], strategy="heft", chip="ascend910")
    plan.validate(); plan.export_stage(0)

Costs come through a small protocol (:class:`~hetnpu.scheduler.evaluate.CostModel`), by
default the analytical :class:`~hetnpu.devices.roofline.RooflineCostModel`; with
``npu_costs="simulator"`` NPU op costs come from the cycle-level simulator
(:mod:`hetnpu.scheduler.simcost`, the only module that imports it, and only when asked).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Sequence
from typing import Any

import onnx

from hetnpu.errors import ConfigError
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
    "NPU_COSTS",
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


NPU_COSTS = ("roofline", "simulator")


def default_cost_model(
    chip: Any = "ascend910",
    precision: str = "fp16",
    *,
    npu_costs: str = "roofline",
    cpu: Any = None,
    gpu: Any = None,
) -> CostModel:
    """The cost model placement uses unless given another.

    Parameters
    ----------
    chip
        NPU preset name, TOML path or ``NpuSpec``.
    precision
        NPU precision: ``fp16``, ``fp32`` or ``int8``.
    npu_costs
        ``"roofline"`` (the default: analytical, microseconds per op) or ``"simulator"``
        (each NPU op's cycles from one run of the cycle-level simulator over the graph,
        about a millisecond of wall time per op; see :mod:`hetnpu.scheduler.simcost`). CPU
        and GPU ops and transfers come from the roofline either way.
    cpu, gpu
        ``CpuSpec``/``GpuSpec``; default the generic ``cpu_x86`` and ``gpu_datacentre``
        presets.

    Raises
    ------
    ConfigError
        Unknown ``npu_costs``, preset or precision.
    """
    from hetnpu.devices.roofline import RooflineCostModel
    from hetnpu.scheduler._specs import host_specs, npu_spec

    default_cpu, default_gpu = host_specs()
    cpu = default_cpu if cpu is None else cpu
    gpu = default_gpu if gpu is None else gpu
    if npu_costs == "roofline":
        return RooflineCostModel(npu_spec(chip), cpu, gpu, precision=precision)
    if npu_costs == "simulator":
        from hetnpu.scheduler.simcost import SimulatorCostModel

        return SimulatorCostModel(npu_spec(chip), cpu, gpu, precision=precision)
    raise ConfigError(f"npu_costs {npu_costs!r}: choose one of {', '.join(NPU_COSTS)}")


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
    npu_costs: str = "roofline",
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
        Overrides the model built from ``chip`` and ``npu_costs``.
    precision
        NPU precision: ``fp16``, ``fp32`` or ``int8``.
    npu_costs
        ``"roofline"`` or ``"simulator"``: where NPU op costs come from when no
        ``cost_model`` is given (see :func:`default_cost_model`).

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
    normalize_devices(devices)  # a typo in the device list fails before any loading
    if not isinstance(graph, Graph):
        from hetnpu.graph import load

        graph = load(graph)
    if cost_model is None:
        cost_model = default_cost_model(chip, precision, npu_costs=npu_costs)
    with _gc_paused():
        return _partition(
            graph, devices, strategy, affinity, fallback, min_stage_size, cost_model, precision
        )


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: placement allocates millions of small tuples that
    form no cycles, and collecting over a big graph's objects again and again was a sixth of
    partitioning time. Collection resumes (if it was on) however the block exits."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


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
