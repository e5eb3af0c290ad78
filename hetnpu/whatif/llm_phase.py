"""A simulated pass summed into a phase's time: each op's span by op class, the simulated layers
replayed as often as the model has them, and, for a dynamic-shape graph, the waits for the host
(:mod:`hetnpu.whatif.llm_host`). :mod:`hetnpu.whatif.llm` times its passes with it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from hetnpu.devices.spec import NpuSpec
from hetnpu.simulator import SimResult
from hetnpu.whatif.llm_host import host_scheduled

__all__ = ["PhaseTime", "summed"]


@dataclass(frozen=True)
class PhaseTime:
    """The simulated time of one forward pass and where it went."""

    seconds: float
    by_class: Mapping[str, float]
    """Seconds per op class (attention, matmul, lm_head, norm+rope, other; host, the device's
    waits for a host-scheduled op; execute, the chip's ``model_execute_s`` for the pass)."""
    bound: Mapping[str, str]
    """Op class → compute or memory: which bound most of its time was (host for the waits)."""
    wall_s: float
    """Wall time of the simulations behind this figure."""


_HOST_CLASSES = frozenset({"host", "execute"})
"""Classes of a pass's time that the host, not the device's units, takes."""


def _op_class(name: str, op_type: str) -> str:
    if name.startswith("/lm_head"):
        return "lm_head"
    if op_type in ("Attention", "Softmax") or "/self_attn/MatMul" in name:
        return "attention"
    if op_type in ("MatMul", "Gemm"):
        return "matmul"
    if (
        op_type in ("RMSNormalization", "RotaryEmbedding")
        or "layernorm" in name
        or "rotary" in name
    ):
        return "norm+rope"
    return "other"


def _layer_of(name: str) -> int | None:
    if name.startswith("/model/layers."):
        return int(name.split(".", 2)[1].split("/", 1)[0])
    return None


OpSpan = tuple[int | None, str, float, bool, str, str]
"""(layer, op name, cycles on the stream, is a kernel, op class, bound) of one simulated op."""


def _spans(res: SimResult) -> list[OpSpan]:
    """Each op's share of the stream: its span plus the launch before it."""
    out: list[OpSpan] = []
    prev_end = 0
    for op in res.ops:
        span = op.end - prev_end if op.end > prev_end else 0
        prev_end = max(prev_end, op.end)
        kernel = op.bound not in ("fused", "zero")
        out.append((_layer_of(op.name), op.name, float(span), kernel,
                    _op_class(op.name, op.op_type), op.bound))  # fmt: skip
    return out


def summed(
    res: SimResult,
    spec: NpuSpec,
    weight: Mapping[int, float],
    varying: frozenset[str] | None = None,
    *,
    toward: SimResult | None = None,
    reps: float = 0.0,
) -> PhaseTime:
    """Time of ``res`` with layer ``i``'s ops counted ``weight[i]`` times, other ops once. Ops
    run one after another on the stream, so an op's share is its span plus the launch before
    it. With ``varying`` (the ops the host schedules, :func:`~hetnpu.whatif.llm_host.
    varying_ops`) the device also waits for the host (class ``host``). A chip with a
    ``model_execute_s`` pays it once per pass (class ``execute``).

    With ``toward`` (the same pass over more sequences), each op's span is extrapolated
    linearly: ``span + reps * (toward's span - span)``, before the host is waited for."""
    ops = _spans(res)
    wall = res.wall_s
    if toward is not None:
        other = _spans(toward)
        if [o[1] for o in other] != [o[1] for o in ops]:
            raise ValueError("the two passes ran different ops")
        ops = [(b[0], b[1], max(0.0, a[2] + reps * (b[2] - a[2])), b[3], b[4], b[5])
               for a, b in zip(ops, other, strict=True)]  # fmt: skip
        wall += toward.wall_s
    bound_time: dict[tuple[str, str], float] = defaultdict(float)
    for layer, _, span, _, cls, bound in ops:
        if bound in ("compute", "memory"):
            bound_time[(cls, bound)] += _times(weight, layer) * span
    # A sunk pass is the same run with a host that takes no time: nothing ever waits for it.
    host_cycles = round(float(spec.host_op_s or 0.0) * spec.clock_hz) if varying is not None else 0
    total, by_class = host_scheduled(_replayed(ops, weight), varying or frozenset(), host_cycles)
    # Each pass is one run of a compiled graph that the host starts and waits for (a torchair
    # graph step, an aclmdlExecute of a .om): the chip's model_execute_s, once per pass however
    # many layers it replays. The device's cycles leave it out (SimResult.execute_latency_s).
    execute = float(spec.model_execute_s or 0.0) * spec.clock_hz
    if execute:
        total += execute
        by_class["execute"] = execute
    bound = {}
    for cls in by_class:
        c, m = bound_time.get((cls, "compute"), 0.0), bound_time.get((cls, "memory"), 0.0)
        bound[cls] = "host" if cls in _HOST_CLASSES else "compute" if c >= m else "memory"
    return PhaseTime(
        total / spec.clock_hz,
        {k: v / spec.clock_hz for k, v in sorted(by_class.items())},
        dict(sorted(bound.items())),
        wall,
    )


def _replayed(
    ops: list[OpSpan], weight: Mapping[int, float]
) -> Iterator[tuple[str, float, bool, str]]:
    """The ops in the order the whole pass runs them: each simulated layer's run repeated as
    often as its weight says."""
    i = 0
    while i < len(ops):
        layer = ops[i][0]
        j = i
        while j < len(ops) and ops[j][0] == layer:
            j += 1
        for _ in range(_times(weight, layer)):
            for _, name, span, kernel, cls, _ in ops[i:j]:
                yield name, span, kernel, cls
        i = j


def _times(weight: Mapping[int, float], layer: int | None) -> int:
    """How often a simulated op runs in the whole pass: its layer's weight, else once."""
    return round(weight.get(layer, 1.0)) if layer is not None else 1
