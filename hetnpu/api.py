"""The top-level entry points that wire the layers together.

The layers below never reach up or sideways: the scheduler places nodes with whatever cost
model it is handed and never imports the simulator; the simulator runs a plan it is handed and
never partitions. This module is where a cycle-level cost model is built for the partitioner,
and where a model is partitioned before its plan is simulated::

    import hetnpu
    plan = hetnpu.partition("model.onnx", devices=["npu", "cpu"], npu_costs="simulator")
    res = hetnpu.simulate_system("model.onnx", "ascend910", devices="npu,cpu")
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import onnx

from hetnpu.devices.names import DEFAULT_DEVICES
from hetnpu.errors import ConfigError
from hetnpu.graph import Graph, as_graph
from hetnpu.scheduler import AffinitySpec, CostModel, ExecutionPlan
from hetnpu.scheduler import partition as _partition

if TYPE_CHECKING:
    from hetnpu.simulator.system import SystemResult

__all__ = ["NPU_COSTS", "make_cost_model", "partition", "simulate_system"]

NPU_COSTS = ("roofline", "simulator")
"""Where NPU op costs come from: the analytical roofline, or the cycle-level simulator."""

ModelSource = Graph | str | os.PathLike[str] | onnx.ModelProto


def make_cost_model(
    chip: Any = "ascend910",
    precision: str = "fp16",
    *,
    npu_costs: str = "roofline",
    cpu: Any = None,
    gpu: Any = None,
) -> CostModel:
    """The cost model placement uses.

    Parameters
    ----------
    chip
        NPU preset name, TOML path or ``NpuSpec``.
    precision
        NPU precision: ``fp16``, ``fp32`` or ``int8``.
    npu_costs
        ``"roofline"`` (analytical, microseconds per op) or ``"simulator"`` (each NPU op's
        cycles from one run of the cycle-level simulator over the graph, about a millisecond of
        wall time per op; see :mod:`hetnpu.simulator.costmodel`). CPU and GPU ops and
        transfers come from the roofline either way.
    cpu, gpu
        ``CpuSpec``/``GpuSpec`` or preset names; default the generic presets.

    Raises
    ------
    ConfigError
        Unknown ``npu_costs``, preset or precision.
    """
    from hetnpu.devices.presets import cpu_spec, gpu_spec, npu_spec
    from hetnpu.scheduler import default_cost_model

    if npu_costs == "roofline":
        return default_cost_model(chip, precision, cpu=cpu, gpu=gpu)
    if npu_costs == "simulator":
        from hetnpu.simulator.costmodel import SimulatorCostModel

        return SimulatorCostModel(npu_spec(chip), cpu_spec(cpu), gpu_spec(gpu), precision=precision)
    raise ConfigError(f"npu_costs {npu_costs!r}: choose one of {', '.join(NPU_COSTS)}")


def partition(
    graph: ModelSource,
    devices: Sequence[str] | str = DEFAULT_DEVICES,
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

    :func:`hetnpu.scheduler.partition` with the cost model built from ``chip`` and
    ``npu_costs`` (see :func:`make_cost_model`) unless ``cost_model`` is given; every other
    parameter is that function's.

    Examples
    --------
    >>> from hetnpu import models
    >>> from hetnpu.graph import load
    >>> g = load(models.build("mlp", batch=64))
    >>> plan = partition(g, ["npu", "cpu"], strategy="heft", npu_costs="simulator")
    >>> sorted({s.device for s in plan.stages})
    ['npu']
    """
    if cost_model is None:
        cost_model = make_cost_model(chip, precision, npu_costs=npu_costs)
    return _partition(
        graph,
        devices,
        strategy=strategy,
        chip=chip,
        affinity=affinity,
        fallback=fallback,
        min_stage_size=min_stage_size,
        cost_model=cost_model,
        precision=precision,
    )


def simulate_system(
    graph: ModelSource | None,
    chip: Any,
    *,
    devices: Sequence[str] | str | None = None,
    strategy: str = "capability",
    plan: ExecutionPlan | None = None,
    cpu: Any = None,
    gpu: Any = None,
    precision: str = "fp16",
    trace_level: str | None = None,
    npu_costs: str = "roofline",
    topology: Any = None,
) -> SystemResult:
    """Partition a model (unless ``plan`` is given) and run the plan on one system timeline.

    Parameters
    ----------
    graph
        A loaded :class:`~hetnpu.graph.Graph`, or anything :func:`hetnpu.graph.load` takes;
        ignored when ``plan`` is given (the plan's graph is used).
    chip
        NPU preset name, TOML path or ``NpuSpec``.
    devices
        Devices for the partitioner (default ``npu,cpu``); unused with ``plan``.
    strategy
        Placement strategy: ``capability``, ``affinity``, ``heft``, ``exact``.
    plan
        An :class:`~hetnpu.scheduler.ExecutionPlan` to run instead of partitioning.
    cpu, gpu, precision, trace_level
        As :func:`hetnpu.simulator.system.simulate_system` takes them.
    npu_costs
        What the partitioner's NPU op costs come from (see :func:`make_cost_model`).
    topology
        The links between NPUs (preset name, TOML path or ``Topology``), for plans on several
        (``npu:0``, ``npu:1``, …; see :mod:`hetnpu.scheduler.parallel`).

    Examples
    --------
    >>> from hetnpu import models
    >>> from hetnpu.graph import load
    >>> g = load(models.build("mlp", batch=64))
    >>> res = simulate_system(g, "ascend910", devices="npu,cpu", strategy="heft")
    >>> [s.device for s in res.stages], res.makespan_s > 0
    (['npu'], True)
    """
    if plan is None:
        if graph is None:
            raise ConfigError("simulate_system: give a model or a plan")
        costs = make_cost_model(chip, precision, npu_costs=npu_costs, cpu=cpu, gpu=gpu)
        plan = _partition(
            as_graph(graph),
            devices if devices is not None else DEFAULT_DEVICES,
            strategy=strategy,
            cost_model=costs,
            precision=precision,
        )
    from hetnpu.simulator.system import simulate_system as simulate_plan

    return simulate_plan(
        plan,
        chip,
        cpu=cpu,
        gpu=gpu,
        precision=precision,
        trace_level=trace_level,
        topology=topology,
    )
