"""How many NPUs a decoder LLM needs: its step time under tensor, pipeline and expert
parallelism on a topology, and the search for the fewest chips that meet a latency or
throughput target.

A step is timed by parts, each from the simulators (:mod:`hetnpu.whatif.shard_time`):

- **one rank's shard of the model**, a layer and the rest (embedding, final norm, LM head)
  simulated on one NPU; a pipeline stage runs ``layers/pp`` layers, the last one the rest;
- **the TP group's collectives per layer** (two all-reduces of the hidden state; under EP a
  reduce-scatter, an all-gather and the two all-to-alls), each its HCCL time on idle links;
  they sit on the critical path (nothing overlaps them in a layer);
- **a send/recv between pipeline stages** of the hidden state.

A decode step is timed at the mean cache length of the generation, ``prompt +
generated/2`` tokens. Decode latency per token with ``pp`` stages runs ``m = pp``
micro-batches of ``batch/pp`` sequences (when pp divides the batch) so the pipeline stays
full: every sequence gets a token each round of ``pp`` stage-times. Prefill (time to first
token) runs the whole batch through the stages one after another. A configuration fits when
:func:`hetnpu.whatif.llm.memory` of a stage's shard (its weights, KV cache, activations and
workspace; an EP rank's shard holds ``experts/ep`` experts) fits the chip's HBM.

Left out: overlap of collectives with compute (MC2 fuses the all-to-alls with the grouped
matmul), host launch costs (a pass pays the chip's ``model_execute_s`` once, in its rest, where
each pipeline stage's own graph run would pay it again; 0 on the 910B presets), MoE load
imbalance (every expert gets the same rows), and EP degrees other than 1 and tp (EP across
pipeline stages, data-parallel attention).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from hetnpu.errors import ConfigError, HetnpuError, ScheduleError
from hetnpu.whatif.shard_time import (
    PROBE_FFN,
    LayerTime,
    ep_collectives_s,
    ep_tokens,
    layer_time,
    shard,
)

__all__ = [
    "PROBE_FFN",
    "TARGETS",
    "LayerTime",
    "Point",
    "SearchResult",
    "ep_collectives_s",
    "ep_tokens",
    "fewest_chips",
    "layer_time",
    "step_point",
]

TARGETS = ("per_token_ms", "ttft_ms", "tokens_per_s")
_FP16 = 2  # bytes of an fp16 activation


@dataclass(frozen=True)
class Point:
    """One configuration evaluated: its figures, or why it was ruled out."""

    chips: int
    tp: int
    pp: int
    batch: int
    topology: str
    fits: bool
    hbm_per_chip: float
    """Bytes each chip holds (weights, KV cache, activations, workspace)."""
    ttft_ms: float | None = None
    per_token_ms: float | None = None
    allreduce_ms: float | None = None
    """Time in the TP group's collectives (all-reduces; under EP the reduce-scatters and
    all-gathers that replace them): per token when decode was timed, else of the prefill."""
    note: str = ""
    ep: int = 1
    """Expert-parallel ranks of a stage (1: experts split by TP, or a dense model)."""
    alltoall_ms: float | None = None
    """Time in the EP dispatch and combine all-to-alls, counted as ``allreduce_ms`` is."""

    @property
    def tokens_per_s(self) -> float | None:
        return None if self.per_token_ms is None else self.batch * 1e3 / self.per_token_ms


@dataclass(frozen=True)
class SearchResult:
    answer: Point | None
    points: tuple[Point, ...]
    wall_s: float
    target: str
    value: float


def _check(c: Any, tp: int, pp: int, ep: int) -> None:
    from hetnpu.scheduler.parallel import check_split

    check_split(
        heads=c.heads,
        kv_heads=c.kv_heads,
        layers=c.layers,
        tp=tp,
        pp=pp,
        ep=ep,
        experts=c.experts,
        intermediate=c.expert_intermediate if c.moe and ep == 1 else None,
        where=c.name,
    )
    if ep > 1 and ep != tp:
        raise ScheduleError(
            f"{c.name}: ep={ep} must equal tp={tp} (the MoE runs over the ranks of the "
            "stage's TP group)"
        )


def _layer_task(args: tuple[Any, ...]) -> LayerTime:
    return layer_time(*args)


def step_point(
    model: str,
    chip: str,
    topology: Any,
    tp: int,
    pp: int,
    batch: int,
    *,
    ep: int = 1,
    prompt: int = 1024,
    generated: int = 1024,
    times: dict[tuple, LayerTime] | None = None,
    phases: tuple[str, ...] = ("prefill", "decode"),
) -> Point:
    """Evaluate one configuration in ``phases``; ``times`` holds precomputed
    :func:`layer_time` results, keyed by its arguments (``ep`` appended only when above 1).

    Raises
    ------
    ScheduleError
        A degree the model does not split by (:func:`~hetnpu.scheduler.parallel.check_split`),
        or an ``ep`` other than 1 and ``tp``.
    """
    from hetnpu.devices.presets import npu_spec
    from hetnpu.models.decoder.config import load_config
    from hetnpu.simulator.collectives import closed_form_s
    from hetnpu.whatif.llm import memory

    c = load_config(model)
    chips = tp * pp
    name = topology.name
    _check(c, tp, pp, ep)
    mem = memory(
        shard(model, tp, ep).with_layers(c.layers // pp),
        npu_spec(chip).hbm_bytes,
        batch=batch,
        prompt=prompt,
        generate=generated,
        precision="fp16",
    )
    if ep > 1:
        # memory() counts every token through k full-width experts of the shard; an EP rank
        # holds T·k/ep such rows, as many elements as a TP rank's T·k rows of width F/tp.
        tp_mem = memory(
            shard(model, tp).with_layers(c.layers // pp),
            npu_spec(chip).hbm_bytes,
            batch=batch,
            prompt=prompt,
            generate=generated,
            precision="fp16",
        )
        mem = dataclasses.replace(mem, activations=tp_mem.activations)
    hbm = mem.total
    if not mem.fits:
        return Point(chips, tp, pp, batch, name, False, hbm, note="does not fit in HBM", ep=ep)
    ranks = topology.device_names()
    micro = pp if pp > 1 and batch % pp == 0 else 1

    def get(phase: str, b: int, seq: int, kv_len: int) -> LayerTime:
        key = (model, chip, tp, phase, b, seq, kv_len) + ((ep,) if ep > 1 else ())
        found = (times if times is not None else {}).get(key)
        return found if found is not None else layer_time(*key)

    def comm(b: int, seq: int) -> tuple[float, float, float]:
        hidden = b * seq * c.hidden * _FP16
        tp_s, a2a = ep_collectives_s(model, topology, tp, ep, b, seq)
        p2p = (
            0.0 if pp == 1 else closed_form_s("send-recv", [ranks[0], ranks[tp]], hidden, topology)
        )
        return tp_s, a2a, p2p

    per_stage = c.layers // pp
    ttft = None
    tp_ms = a2a_ms = None
    if "prefill" in phases:
        pre = get("prefill", batch, prompt, 0)
        tp_s, a2a, p2p = comm(batch, prompt)
        ttft = (pp * per_stage * (pre.layer_s + tp_s + a2a) + (pp - 1) * p2p + pre.rest_s) * 1e3
        tp_ms, a2a_ms = c.layers * tp_s * 1e3, c.layers * a2a * 1e3
    if "decode" not in phases:
        return Point(chips, tp, pp, batch, name, True, hbm, ttft_ms=ttft, allreduce_ms=tp_ms,
                     ep=ep, alltoall_ms=a2a_ms if ep > 1 else None)  # fmt: skip
    dec = get("decode", batch // micro, 1, _context(prompt, generated))
    tp_s, a2a, p2p = comm(batch // micro, 1)
    stage = per_stage * (dec.layer_s + tp_s + a2a)
    # GPipe over one step: the first micro-batch fills pp - 1 stages (each with its hand-over),
    # then the last stage takes every micro-batch in turn, the LM head (rest) included.
    per_token = (pp - 1) * (stage + p2p) + micro * (stage + dec.rest_s)
    return Point(
        chips,
        tp,
        pp,
        batch,
        name,
        True,
        hbm,
        ttft_ms=ttft,
        per_token_ms=per_token * 1e3,
        allreduce_ms=c.layers * tp_s * 1e3,
        note=f"{micro} micro-batches" if micro > 1 else "",
        ep=ep,
        alltoall_ms=c.layers * a2a * 1e3 if ep > 1 else None,
    )


def _topologies(chip: str, family: str, names: Sequence[str] | None) -> list[Any]:
    from hetnpu.devices.topology import list_topologies, load_topology

    found = [load_topology(n) for n in (names or list_topologies())]
    found = [t for t in found if t.chip == chip and (names or t.family == family)]
    if not found:
        raise ConfigError(
            f"no topology preset of family {family!r} holds {chip!r} NPUs; "
            "`hetnpu topologies` lists them"
        )
    return sorted(found, key=lambda t: (t.devices, t.name))


def _meets(p: Point, target: str, value: float) -> bool:
    if not p.fits:
        return False
    if target == "per_token_ms":
        return p.per_token_ms is not None and p.per_token_ms <= value
    if target == "ttft_ms":
        return p.ttft_ms is not None and p.ttft_ms <= value
    return p.tokens_per_s is not None and p.tokens_per_s >= value


def fewest_chips(
    model: str,
    chip: str,
    target: str,
    value: float,
    batch: int,
    *,
    family: str = "a2",
    topologies: Sequence[str] | None = None,
    prompt: int = 1024,
    generated: int = 1024,
    workers: int | None = 1,
    scheduler: str | None = None,
    executor: Executor | None = None,
) -> SearchResult:
    """The fewest ``chip`` NPUs (then the fastest split) that meet ``target <= value``
    (``>=`` for ``tokens_per_s``) at ``batch``, over every TP × PP split the topologies of
    that chip hold: those of ``family`` (``a2``: one or two Atlas 800I A2 servers), or the
    named ``topologies``. Each split runs on the smallest topology with enough NPUs. An MoE
    model is tried with its experts split by TP (``ep=1``) and, where ``tp`` divides the
    experts, whole over the TP group (``ep=tp``, see the module docstring).

    The distinct layer simulations run through the sweep machinery's executor: this process
    (``workers=1``), a local process pool, or a Dask cluster (``scheduler`` address).

    Raises
    ------
    ConfigError
        Unknown target, model, chip or topology.
    """
    from hetnpu.models.decoder.config import load_config
    from hetnpu.whatif.sweep import _BROKEN_HINT, _abandon, _executor

    if target not in TARGETS:
        raise ConfigError(f"target {target!r}: choose one of {', '.join(TARGETS)}")
    if value <= 0 or batch < 1:
        raise ConfigError(f"target value and batch must be positive, got {value} and {batch}")
    start = time.perf_counter()
    c = load_config(model)
    topos = _topologies(chip, family, topologies)
    candidates = []
    largest = topos[-1].devices
    for tp in (d for d in range(1, largest + 1) if c.heads % d == 0):
        # An MoE model's experts split by TP (ep 1) or whole over the TP group (ep = tp).
        eps = (1, tp) if c.moe and tp > 1 else (1,)
        for pp in (d for d in range(1, largest // tp + 1) if c.layers % d == 0):
            topo = next(t for t in topos if t.devices >= tp * pp)
            for ep in eps:
                try:
                    _check(c, tp, pp, ep)
                except HetnpuError:
                    continue
                candidates.append((tp, pp, ep, topo))
    # Memory first: only configurations that fit need simulating.
    fitting = [
        (tp, pp, ep, topo)
        for tp, pp, ep, topo in candidates
        if step_point(model, chip, topo, tp, pp, batch, ep=ep, prompt=prompt,
                      generated=generated, phases=()).fits
    ]  # fmt: skip
    keys: set[tuple] = set()
    for tp, pp, ep, _ in fitting:
        micro = pp if pp > 1 and batch % pp == 0 else 1
        tail = (ep,) if ep > 1 else ()
        if target == "ttft_ms":
            keys.add((model, chip, tp, "prefill", batch, prompt, 0, *tail))
        keys.add((model, chip, tp, "decode", batch // micro, 1, _context(prompt, generated), *tail))
    ordered = sorted(keys)
    with _executor(workers, scheduler, executor) as pool:
        if pool is None:
            results = [_layer_task(k) for k in ordered]
        else:
            # Submitted and collected in order, not pool.map: map cancels its pending futures
            # when interrupted, which the pool's own clean-up then trips on (sweep._abandon).
            futures = [pool.submit(_layer_task, k) for k in ordered]
            try:
                results = [f.result() for f in futures]
            except BrokenProcessPool:
                raise ConfigError("the simulation processes died" + _BROKEN_HINT) from None
            except BaseException:
                _abandon(futures, pool, executor)
                raise
    times = dict(zip(ordered, results, strict=True))
    points = []
    for tp, pp, ep, topo in candidates:
        if (tp, pp, ep, topo) not in fitting:
            points.append(
                step_point(model, chip, topo, tp, pp, batch, ep=ep, prompt=prompt,
                           generated=generated, phases=())
            )  # fmt: skip
            continue
        phases = ("prefill", "decode") if target == "ttft_ms" else ("decode",)
        points.append(
            step_point(model, chip, topo, tp, pp, batch, ep=ep, prompt=prompt,
                       generated=generated, times=times, phases=phases)
        )  # fmt: skip
    points = [_clean(p) for p in points]
    meeting = [p for p in points if _meets(p, target, value)]
    metric = {
        "per_token_ms": lambda p: p.per_token_ms,
        "ttft_ms": lambda p: p.ttft_ms,
        "tokens_per_s": lambda p: -(p.tokens_per_s or 0.0),
    }[target]
    answer = min(meeting, key=lambda p: (p.chips, metric(p), p.tp, p.ep)) if meeting else None
    points.sort(key=lambda p: (p.chips, p.tp, p.ep))
    return SearchResult(answer, tuple(points), time.perf_counter() - start, target, value)


def _context(prompt: int, generated: int) -> int:
    """The cache length a decode step is timed at: mid-generation, the mean over the
    ``generated`` steps of a cache growing from ``prompt`` tokens."""
    return prompt + generated // 2


def _clean(p: Point) -> Point:
    if not p.fits:
        return dataclasses.replace(
            p, ttft_ms=None, per_token_ms=None, allreduce_ms=None, alltoall_ms=None
        )
    return p
