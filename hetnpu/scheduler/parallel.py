"""Parallel plans over several NPUs: tensor parallelism (:func:`tensor_parallel_plan`), expert
parallelism of MoE layers (:func:`expert_parallel_plan`) and pipelining of a model's layers
(:func:`pipeline_plan`), each an :class:`ExecutionPlan` valid
by the same checker and exportable stage by stage like any other, plus the divisibility rules
a tensor/pipeline/expert-parallel split of a decoder must obey (:func:`check_split`).

A tensor-parallel plan runs the graph rewritten by :mod:`hetnpu.scheduler.tp_rewrite`: rank
r's shard of each op on device r, a stage per rank between two collectives, and each
collective's copies grouped as a :class:`~hetnpu.scheduler.plan.Collective` so the system
simulator times them by HCCL's algorithm. An expert-parallel plan is built the same way
from the graph :mod:`hetnpu.scheduler.ep_rewrite` writes (its collectives are all-to-alls).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from hetnpu.devices.names import device_index, is_known_device, is_npu
from hetnpu.devices.rates import device_dtype
from hetnpu.errors import ConfigError, ScheduleError
from hetnpu.graph.ir import Graph
from hetnpu.scheduler.evaluate import CostModel
from hetnpu.scheduler.plan import Collective, ExecutionPlan, build_plan

__all__ = ["check_split", "expert_parallel_plan", "pipeline_plan", "tensor_parallel_plan"]


def _npus(devices: Sequence[str] | str, least: int) -> list[str]:
    names = [d.strip() for d in devices.split(",")] if isinstance(devices, str) else list(devices)
    bad = [d for d in names if not is_known_device(d) or not is_npu(d)]
    if bad:
        raise ConfigError(f"parallel plans run on NPUs only; {bad[0]!r} is not one")
    if len(set(names)) != len(names) or len(names) < least:
        raise ConfigError(
            f"a parallel plan needs at least {least} distinct NPUs (npu:0, npu:1, ...), got {names}"
        )
    if len({device_index(d) for d in names}) != len(names):
        raise ConfigError(f"address each NPU of a parallel plan (npu:0, npu:1, ...), got {names}")
    return names


def tensor_parallel_plan(
    graph: Graph,
    devices: Sequence[str] | str,
    *,
    precision: str = "fp16",
    row_parallel: bool = True,
    strict: bool = False,
) -> ExecutionPlan:
    """``graph`` split across ``devices`` by tensor parallelism.

    Parameters
    ----------
    graph
        The loaded model (static shapes).
    devices
        The ranks in order: ``["sim-npu:0", "sim-npu:1"]`` or ``"npu:0,npu:1,npu:2,npu:3"``.
    precision
        Recorded in the plan (NPU layouts and checks).
    row_parallel
        Megatron's row-parallel layers with an all-reduce (default), or all-gathers only
        (bit-exact fp32 results; see :func:`~hetnpu.scheduler.tp_rewrite.shard_graph`).
    strict
        Refuse a degree that leaves a weight op or an attention's heads unsplit, instead of
        replicating or all-gathering there.

    Returns
    -------
    ExecutionPlan
        Over the rewritten graph (``plan.graph``): its inputs and outputs are the model's.

    Raises
    ------
    ConfigError
        Fewer than two NPUs, a non-NPU device, or an NPU named twice.
    ScheduleError
        The degree splits none of the model's weight ops, or (``strict``) leaves one op or
        one attention's heads unsplit, naming the node and the count it does not divide.

    Examples
    --------
    >>> from hetnpu import models
    >>> from hetnpu.graph import load
    >>> plan = tensor_parallel_plan(load(models.build("mlp", batch=4)), ["npu:0", "npu:1"])
    >>> sorted({s.device for s in plan.stages}), [c.kind for c in plan.collectives][:1]
    (['npu:0', 'npu:1'], ['all-reduce'])
    """
    from hetnpu.scheduler.tp_rewrite import shard_graph

    ranks = _npus(devices, 2)
    sharded = shard_graph(graph, len(ranks), row_parallel=row_parallel)
    if not sharded.split_weights:
        why = f": {sharded.unsplit[0]}" if sharded.unsplit else " (it has no constant weights)"
        raise ScheduleError(f"tp={len(ranks)} splits none of the model's weight ops{why}")
    if strict and sharded.unsplit:
        raise ScheduleError(sharded.unsplit[0])
    return _sharded_plan(sharded, ranks, f"tensor-parallel:{len(ranks)}", precision)


def _sharded_plan(sharded: Any, ranks: list[str], strategy: str, precision: str) -> ExecutionPlan:
    """The plan of a rewritten graph: each node on its rank, a stage per rank between two
    collectives, each collective's copies grouped as a :class:`Collective`."""
    from hetnpu.graph import load

    g = load(sharded.model)
    assignment = {n.name: ranks[sharded.rank_of[n.name]] for n in g if not n.is_constant}
    keyed: dict[tuple[int, int], list[str]] = {}
    for n in g:
        if not n.is_constant:
            key = (sharded.segment_of[n.name], sharded.rank_of[n.name])
            keyed.setdefault(key, []).append(n.name)
    groups = [keyed[k] for k in sorted(keyed)]
    plan = build_plan(g, assignment, strategy=strategy, precision=precision, groups=groups)
    collectives = []
    for c in sharded.collectives:
        parts = set(c.inputs)
        moves = tuple(
            k
            for k, tr in enumerate(plan.transfers)
            if tr.tensor in parts and tr.src_device != tr.dst_device and tr.dst_stage is not None
        )
        if not moves:  # every part stays on its rank (an all-to-all whose rows are all local)
            continue
        # Between NPUs the tensor travels as the NPU holds it (fp16 unless precision is fp32).
        dtype = g.tensors[c.inputs[0]].dtype
        nbytes = c.nbytes * _itemsize(device_dtype(dtype, precision)) // _itemsize(dtype)
        collectives.append(Collective(c.name, c.kind, tuple(ranks), nbytes, moves))
    plan = _with_collectives(plan, tuple(collectives))
    plan.validate()
    return plan


def expert_parallel_plan(
    graph: Graph, devices: Sequence[str] | str, *, precision: str = "fp16"
) -> ExecutionPlan:
    """``graph``'s MoE experts split across ``devices`` by expert parallelism.

    Rank r holds experts ``r·E/ep .. (r+1)·E/ep - 1`` of every ``even``-form MoE layer
    (:func:`~hetnpu.models.decoder.build_decoder` with ``moe="even"``) and owns the r-th slice
    of the tokens; the (token, choice) rows reach their expert's rank by an all-to-all
    (dispatch) and come back by another (combine), then an all-gather gives every rank the
    layer's rows for the rest of the model, which runs replicated
    (:mod:`hetnpu.scheduler.ep_rewrite`).

    Parameters
    ----------
    graph
        The loaded model (static shapes), with ``even`` MoE layers.
    devices
        The ranks in order: ``["sim-npu:0", "sim-npu:1"]`` or ``"npu:0,npu:1"``.
    precision
        Recorded in the plan (NPU layouts and the bytes the collectives move).

    Returns
    -------
    ExecutionPlan
        Over the rewritten graph (``plan.graph``), with ``all-to-all`` and ``all-gather``
        collectives; its inputs and outputs are the model's.

    Raises
    ------
    ConfigError
        Fewer than two NPUs, a non-NPU device, or an NPU named twice.
    ScheduleError
        No ``even`` MoE layer, or a degree that does not divide a layer's experts (naming the
        node and the count).
    """
    from hetnpu.scheduler.ep_rewrite import shard_experts

    ranks = _npus(devices, 2)
    sharded = shard_experts(graph, len(ranks))
    return _sharded_plan(sharded, ranks, f"expert-parallel:{len(ranks)}", precision)


def _itemsize(dtype: str) -> int:
    import numpy as np

    return int(np.dtype(dtype).itemsize)


def _with_collectives(plan: ExecutionPlan, collectives: tuple[Collective, ...]) -> ExecutionPlan:
    import dataclasses

    return dataclasses.replace(plan, collectives=collectives)


def pipeline_plan(
    graph: Graph,
    devices: Sequence[str] | str,
    *,
    cost_model: CostModel | None = None,
    chip: Any = "ascend910b",
    precision: str = "fp16",
) -> ExecutionPlan:
    """``graph`` cut into ``len(devices)`` consecutive pieces of about equal cost, piece k on
    ``devices[k]``: pipeline parallelism of a CNN or of a decoder's layer ranges.

    The cuts balance the cost model's op times (the roofline of ``chip`` by default) over
    the graph's topological order; activations cross between pieces as send/recv transfers.

    Raises
    ------
    ConfigError
        Fewer than two NPUs, or more devices than the graph has ops.
    """
    from hetnpu.scheduler import default_cost_model

    ranks = _npus(devices, 2)
    costs = cost_model or default_cost_model(chip, precision)
    order = [n for n in graph if not n.is_constant]
    if len(order) < len(ranks):
        raise ConfigError(f"{len(ranks)} pipeline stages for a graph of {len(order)} ops")
    times = [costs.cost(graph, n, ranks[0]) for n in order]
    total = sum(times) or 1.0
    cuts, acc, k = [], 0.0, 1
    for i, t in enumerate(times):
        # Cut before the op that would take this piece past its share, leaving enough ops
        # for the pieces still to come.
        remaining = len(order) - i
        must = remaining == len(ranks) - k
        if k < len(ranks) and i > 0 and (acc + t / 2 > total * k / len(ranks) or must):
            cuts.append(i)
            k += 1
        acc += t
    bounds = [0, *cuts, len(order)]
    groups = [[n.name for n in order[a:b]] for a, b in itertools.pairwise(bounds)]
    assignment = {name: ranks[k] for k, g in enumerate(groups) for name in g}
    plan = build_plan(
        graph,
        assignment,
        strategy=f"pipeline:{len(ranks)}",
        cost_model=None,
        precision=precision,
        groups=groups,
    )
    plan.validate()
    return plan


def check_split(
    *,
    heads: int,
    kv_heads: int,
    layers: int,
    tp: int,
    pp: int = 1,
    ep: int = 1,
    experts: int = 0,
    intermediate: int | None = None,
    where: str = "model",
) -> None:
    """Whether a decoder splits ``tp`` × ``pp`` × ``ep`` ways, as Megatron requires.

    Raises
    ------
    ScheduleError
        Naming the degree and the count it does not divide: attention heads (query, and K/V
        heads unless each rank holds whole replicated K/V heads), FFN width, layers over
        pipeline stages, experts over expert-parallel ranks.
    """
    for name, value in (("tp", tp), ("pp", pp), ("ep", ep)):
        if value < 1:
            raise ScheduleError(f"{where}: {name} must be at least 1, got {value}")
    if heads % tp:
        raise ScheduleError(f"{where}: tp={tp} does not divide the {heads} attention heads")
    if kv_heads % tp and tp % kv_heads:
        raise ScheduleError(
            f"{where}: tp={tp} neither divides the {kv_heads} K/V heads nor is a multiple of "
            "them (grouped-query attention needs one or the other)"
        )
    if intermediate is not None and intermediate % tp:
        raise ScheduleError(f"{where}: tp={tp} does not divide the FFN width {intermediate}")
    if layers % pp:
        raise ScheduleError(f"{where}: pp={pp} does not divide the {layers} layers")
    if ep > 1 and (not experts or experts % ep):
        raise ScheduleError(f"{where}: ep={ep} does not divide the {experts} experts")
