"""A real profile against a simulated run, op by op: which ops match, the sim/real ratio of
each op and op family, which mechanism dominates each side, and the ops that explain the gap.

Ops match by name first (each name's runs paired in start order), then, among the rest, by
op family and order: the k-th unmatched MatMul-family op of the real run with the k-th of the
simulated one. Families fold ONNX op types and the CANN kernel types msprof reports for them
into one key (:data:`FAMILIES`), so ``Conv`` meets ``Conv2D`` and ``MatMul`` meets
``BatchMatMul`` or ``MatMulV2``; unknown types compare lower-cased without a ``V<n>`` suffix.

Left out: matching by shapes (a real profile's rows carry them, the simulated trace too, but
layouts differ after ATC's fusion passes) and fused ops that one side folds into another
(they stay unmatched and are listed).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from hetnpu.traces.attribution import dominant
from hetnpu.traces.read import OpSpan, Trace, read_trace

__all__ = ["FAMILIES", "Comparison", "compare_runs", "family"]

FAMILIES = {
    "conv": "conv",
    "conv2d": "conv",
    "convolution": "conv",
    "gemm": "matmul",
    "matmul": "matmul",
    "batchmatmul": "matmul",
    "fullyconnection": "matmul",
    "softmax": "softmax",
    "scaledmaskedsoftmax": "softmax",
    "layernormalization": "layernorm",
    "layernorm": "layernorm",
    "batchnormalization": "batchnorm",
    "bninfer": "batchnorm",
    "bninferd": "batchnorm",
    "globalaveragepool": "avgpool",
    "averagepool": "avgpool",
    "avgpool": "avgpool",
    "reducemean": "avgpool",
    "reducemeand": "avgpool",
    "maxpool": "maxpool",
    "maxpoolwithargmax": "maxpool",
    "gelu": "gelu",
    "fastgelu": "gelu",
}
"""Lower-cased op type (``V<n>`` suffix dropped) → family. The CANN names are the kernel types
of ATC's ONNX mapping as msprof reports them (Conv → Conv2D, Gemm → MatMulV2 / FullyConnection,
BatchNormalization → BNInfer; the fixtures' BatchMatMul, MatMulV3, ScaledMaskedSoftmax)."""

_VERSION = re.compile(r"v\d+$")


def family(op_type: str) -> str:
    """The family key of an ONNX or CANN op type.

    >>> family("MatMulV3"), family("Gemm"), family("Conv2D"), family("Transpose")
    ('matmul', 'matmul', 'conv', 'transpose')
    """
    key = _VERSION.sub("", op_type.lower())
    return FAMILIES.get(key, key)


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare_runs`; times in µs."""

    real_us: float
    """Real time of the matched ops."""
    sim_us: float
    """Simulated time of the matched ops."""
    ops: list[dict[str, Any]]
    """Per matched pair: real and sim name, type, family, µs, ratio (sim/real), mechanism on
    each side, how matched (``name`` or ``type``), largest gap first."""
    types: list[dict[str, Any]]
    """Per family: count, real and sim µs, ratio, dominant mechanism each side."""
    gap: list[dict[str, Any]]
    """The matched pairs that explain most of the total gap: each with its share of the sum of
    absolute gaps and the running total, until 80 % is explained."""
    unmatched_real: list[str]
    unmatched_sim: list[str]

    @property
    def ratio(self) -> float | None:
        return self.sim_us / self.real_us if self.real_us > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "real_us": self.real_us,
            "sim_us": self.sim_us,
            "ratio": self.ratio,
            "ops": self.ops,
            "types": self.types,
            "gap": self.gap,
            "unmatched_real": self.unmatched_real,
            "unmatched_sim": self.unmatched_sim,
        }


def _trace(source: Any) -> Trace:
    return source if isinstance(source, Trace) else read_trace(source)


def _pairs(real: list[OpSpan], sim: list[OpSpan]) -> list[tuple[OpSpan, OpSpan, str]]:
    pairs: list[tuple[OpSpan, OpSpan, str]] = []
    used_r: set[int] = set()
    used_s: set[int] = set()
    by_name: dict[str, list[int]] = defaultdict(list)
    for j, s in enumerate(sim):
        by_name[s.name].append(j)
    for i, r in enumerate(real):
        if by_name.get(r.name):
            j = by_name[r.name].pop(0)
            pairs.append((r, sim[j], "name"))
            used_r.add(i)
            used_s.add(j)
    by_family: dict[str, list[int]] = defaultdict(list)
    for j, s in enumerate(sim):
        if j not in used_s:
            by_family[family(s.op_type)].append(j)
    for i, r in enumerate(real):
        if i in used_r or not r.op_type:
            continue
        queue = by_family.get(family(r.op_type))
        if queue:
            j = queue.pop(0)
            pairs.append((r, sim[j], "type"))
            used_r.add(i)
            used_s.add(j)
    return pairs


def _order(o: OpSpan) -> tuple[float, str]:
    return o.start_us, o.name


def compare_runs(real: Any, sim: Any, explain: float = 0.8) -> Comparison:
    """Match the ops of ``real`` and ``sim`` (traces or paths) and compare them (module doc).

    ``explain`` is the share of the total absolute gap the ``gap`` list must cover.
    """
    ra, sa = _trace(real), _trace(sim)
    real_ops = sorted((o for o in ra.ops if o.dur_us > 0), key=_order)
    sim_ops = sorted((o for o in sa.ops if o.dur_us > 0), key=_order)
    pairs = _pairs(real_ops, sim_ops)
    rows = []
    for r, s, how in pairs:
        rows.append(
            {
                "real": r.name,
                "sim": s.name,
                "real_type": r.op_type,
                "sim_type": s.op_type,
                "family": family(s.op_type),
                "real_us": r.dur_us,
                "sim_us": s.dur_us,
                "delta_us": round(s.dur_us - r.dur_us, 6),
                "ratio": s.dur_us / r.dur_us,
                "real_mechanism": r.mechanism,
                "sim_mechanism": s.mechanism,
                "matched_by": how,
            }
        )
    rows.sort(key=lambda p: (-abs(p["delta_us"]), p["sim"]))
    types: dict[str, dict[str, Any]] = {}
    for p in rows:
        t = types.setdefault(
            p["family"],
            {"family": p["family"], "count": 0, "real_us": 0.0, "sim_us": 0.0, "_r": {}, "_s": {}},
        )
        t["count"] += 1
        t["real_us"] += p["real_us"]
        t["sim_us"] += p["sim_us"]
        for side, mech, us in (
            ("_r", "real_mechanism", "real_us"),
            ("_s", "sim_mechanism", "sim_us"),
        ):
            if p[mech]:
                t[side][p[mech]] = t[side].get(p[mech], 0.0) + p[us]
    type_rows = []
    for t in sorted(types.values(), key=lambda t: (-abs(t["sim_us"] - t["real_us"]), t["family"])):
        r_m, s_m = t.pop("_r"), t.pop("_s")
        t["ratio"] = t["sim_us"] / t["real_us"] if t["real_us"] > 0 else None
        t["real_mechanism"], t["sim_mechanism"] = dominant(r_m), dominant(s_m)
        type_rows.append(t)
    total_gap = sum(abs(p["delta_us"]) for p in rows)
    gap, running = [], 0.0
    for p in rows:
        if total_gap <= 0 or running >= explain:
            break
        share = abs(p["delta_us"]) / total_gap
        running += share
        gap.append({**p, "share": share, "cumulative": running})
    matched_r = {id(r) for r, _s, _h in pairs}
    matched_s = {id(s) for _r, s, _h in pairs}
    return Comparison(
        real_us=sum(p["real_us"] for p in rows),
        sim_us=sum(p["sim_us"] for p in rows),
        ops=rows,
        types=type_rows,
        gap=gap,
        unmatched_real=[o.name for o in real_ops if id(o) not in matched_r],
        unmatched_sim=[o.name for o in sim_ops if id(o) not in matched_s],
    )
