"""Placement strategies: which device runs each node.

All strategies share one entry point, :func:`place`, and one registry, :data:`STRATEGIES`
(one module each): ``capability`` (ONNX Runtime's GetCapability with CPU fallback),
``affinity`` (the user's pins, OpenVINO HETERO style), ``heft`` (cost- and transfer-aware list
scheduling) and ``exact`` (branch and bound, the optimality reference on small graphs).
"""

from __future__ import annotations

from collections.abc import Sequence

from hetnpu.errors import ConfigError
from hetnpu.graph.ir import Graph
from hetnpu.scheduler.evaluate import CachedCosts, CostModel, as_cached, estimate_makespan
from hetnpu.scheduler.placement.affinity import (
    AffinitySpec,
    apply_pins,
    parse_affinity,
    place_affinity,
)
from hetnpu.scheduler.placement.capability import place_capability
from hetnpu.scheduler.placement.common import (
    KNOWN_DEVICES,
    NPU_DEVICES,
    Context,
    Placement,
    make_context,
    normalize_devices,
)
from hetnpu.scheduler.placement.exact import MAX_NODES, place_exact
from hetnpu.scheduler.placement.heft import place_heft

__all__ = [
    "KNOWN_DEVICES",
    "MAX_NODES",
    "NPU_DEVICES",
    "STRATEGIES",
    "Placement",
    "normalize_devices",
    "parse_affinity",
    "place",
]

STRATEGIES = ("capability", "affinity", "heft", "exact")


def place(
    graph: Graph,
    devices: Sequence[str] | str,
    *,
    strategy: str = "capability",
    cost_model: CostModel | CachedCosts | None = None,
    affinity: AffinitySpec | None = None,
    fallback: bool = True,
    precision: str = "fp16",
) -> Placement:
    """Assign every non-constant node of ``graph`` to a device.

    Parameters
    ----------
    graph
        The loaded graph. Constant-folded nodes get no device.
    devices
        ``"npu"``, ``"sim-npu"``, ``"gpu"``, ``"cpu"`` in priority order; ``cpu`` is added as
        the fallback if missing.
    strategy
        One of :data:`STRATEGIES`.
    cost_model
        Op and transfer costs; needed by ``heft`` and ``exact``.
    affinity
        ``{pattern: device}`` or ``[(pattern, device), ...]``; a pattern is an op type, a node
        name or a glob over node names; later entries win. Pins bind every strategy
        (``capability`` with pins is ``affinity``).
    fallback
        Let nodes no listed accelerator runs go to the CPU (recorded); off, they are an error.
    precision
        ``"fp16"``, ``"fp32"`` or ``"int8"``, as the devices' capability tables take it.

    Returns
    -------
    Placement
        ``assignment`` (node -> device) and ``fallbacks`` (node -> reason).

    Raises
    ------
    ConfigError
        Unknown device or strategy; an affinity to an unlisted device or matching nothing;
        ``exact`` on a graph
        over :data:`MAX_NODES` nodes; a cost-based strategy without a cost model.
    UnsupportedOpError
        Fallback refused and needed; a pinned node its device cannot run.

    Examples
    --------
    >>> from hetnpu import models
    >>> from hetnpu.devices.presets import load_cpu, npu_spec
    >>> from hetnpu.devices.roofline import RooflineCostModel
    >>> from hetnpu.graph import load
    >>> g = load(models.build("mlp", batch=4))
    >>> costs = RooflineCostModel(npu_spec("ascend910"), load_cpu())
    >>> p = place(g, ["npu", "cpu"], strategy="heft", cost_model=costs)
    >>> p.assignment["/fc1/Gemm"], p.fallbacks
    ('npu', {})
    >>> place(g, ["npu", "cpu"], affinity={"Softmax": "cpu"}).assignment["/softmax/Softmax"]
    'cpu'
    """
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"unknown strategy {strategy!r}; known strategies: {', '.join(STRATEGIES)}"
        )
    if strategy in ("heft", "exact") and cost_model is None:
        raise ConfigError(f"strategy {strategy!r} needs a cost model")
    costs = None if cost_model is None else as_cached(graph, cost_model)
    ctx = make_context(
        graph,
        devices,
        costs=costs,
        fallback=fallback,
        precision=precision,
        first_only=strategy in ("capability", "affinity"),
    )
    if affinity:
        apply_pins(ctx, affinity)
    if strategy == "capability":
        return place_capability(ctx)
    if strategy == "affinity":
        return place_affinity(ctx)
    if strategy == "heft":
        return _no_worse_than_greedy(ctx, place_heft(ctx))
    heft = place_heft(ctx)
    greedy = place_capability(ctx)
    return place_exact(ctx, [heft.assignment, greedy.assignment])


def _no_worse_than_greedy(ctx: Context, heft: Placement) -> Placement:
    """HEFT's schedule of its own choices is not the list schedule every strategy is scored
    by, and on large graphs its choices can score worse than the greedy's; keep whichever
    scores better (HEFT on a tie). One more list schedule: linear in the graph."""
    assert ctx.costs is not None  # place() checked
    greedy = place_capability(ctx)
    if greedy.assignment == heft.assignment:
        return heft
    mine = estimate_makespan(ctx.graph, heft.assignment, ctx.costs)
    theirs = estimate_makespan(ctx.graph, greedy.assignment, ctx.costs)
    return greedy if theirs < mine else heft
