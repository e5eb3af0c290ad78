"""How many NPUs a decoder LLM needs: its step time under tensor and pipeline parallelism on
a topology, and the search for the fewest chips that meet a latency or throughput target.

A step is timed by parts, each from the simulators:

- **one rank's shard of the model**: the decoder with ``heads/tp`` query heads,
  ``kv_heads/tp`` K/V heads (one each when tp exceeds them: Megatron replicates them),
  ``intermediate/tp`` FFN width and ``vocab/tp`` embedding and LM-head rows, timed by the
  single-NPU LLM model (:func:`hetnpu.whatif.llm.phase_time`: the fused graph simulated cycle
  by cycle, one layer replayed for all, big prompt batches extrapolated). A shard of 2 and of
  3 layers gives the time of a layer (their difference) and of the rest (embedding, final
  norm, LM head); a pipeline stage runs ``layers/pp`` layers, the last one the rest;
- **two all-reduces per layer** of the hidden state (after attention and after the FFN),
  [batch, seq, hidden] fp16, over the TP group on the topology's links, each its HCCL time on
  idle links (:func:`hetnpu.simulator.collectives.closed_form_s`, which the collectives tests
  pin to the simulated time); they sit on the critical path (nothing overlaps them in a
  layer);
- **a send/recv between pipeline stages** of the hidden state.

A decode step is timed at the mean cache length of the generation, ``prompt +
generated/2`` tokens. Decode latency per token with ``pp`` stages runs ``m = pp``
micro-batches of ``batch/pp`` sequences (when pp divides the batch) so the pipeline stays
full: every sequence gets a token each round of ``pp`` stage-times. Prefill (time to first
token) runs the whole batch through the stages one after another. A configuration fits when
:func:`hetnpu.whatif.llm.memory` of a stage's shard (its weights, KV cache, activations and
workspace) fits the chip's HBM.

Left out: overlap of collectives with compute, host launch costs, and expert parallelism
(the decoder graph writes an MoE layer densely, so EP time would be wrong;
:func:`hetnpu.scheduler.parallel.check_split` checks EP degrees only).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from hetnpu.errors import ConfigError, HetnpuError

__all__ = [
    "TARGETS",
    "LayerTime",
    "Point",
    "SearchResult",
    "fewest_chips",
    "layer_time",
    "step_point",
]

TARGETS = ("per_token_ms", "ttft_ms", "tokens_per_s")
_FP16 = 2  # bytes of an fp16 activation


@dataclass(frozen=True)
class LayerTime:
    """One layer's shard and the rest of the model on one chip, simulated (seconds)."""

    layer_s: float
    rest_s: float


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
    """Time in all-reduces: per token when decode was timed, else of the prefill."""
    note: str = ""

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


def _shard(model: str, tp: int) -> Any:
    from hetnpu.models.decoder.config import load_config

    c = load_config(model)
    return dataclasses.replace(
        c,
        heads=c.heads // tp,
        kv_heads=max(1, c.kv_heads // tp),
        intermediate=c.intermediate // tp,
        vocab=math.ceil(c.vocab / tp),
    )


@functools.lru_cache(maxsize=256)
def layer_time(
    model: str, chip: str, tp: int, phase: str, batch: int, seq: int, kv_len: int
) -> LayerTime:
    """One TP shard's layer and rest times on ``chip`` (see the module docstring)."""
    from hetnpu.devices.presets import npu_spec
    from hetnpu.whatif.llm import phase_time

    shard, spec = _shard(model, tp), npu_spec(chip)
    two, three = (
        phase_time(shard.with_layers(n), spec, "fp16", phase=phase, batch=batch, seq=seq,
                   kv_len=kv_len).seconds
        for n in (2, 3)
    )  # fmt: skip
    layer = three - two
    return LayerTime(layer, max(two - 2 * layer, 0.0))


def _layer_task(args: tuple[str, str, int, str, int, int, int]) -> LayerTime:
    return layer_time(*args)


def step_point(
    model: str,
    chip: str,
    topology: Any,
    tp: int,
    pp: int,
    batch: int,
    *,
    prompt: int = 1024,
    generated: int = 1024,
    times: dict[tuple, LayerTime] | None = None,
    phases: tuple[str, ...] = ("prefill", "decode"),
) -> Point:
    """Evaluate one configuration in ``phases``; ``times`` holds precomputed
    :func:`layer_time` results."""
    from hetnpu.devices.presets import npu_spec
    from hetnpu.models.decoder.config import load_config
    from hetnpu.scheduler.parallel import check_split
    from hetnpu.simulator.collectives import closed_form_s
    from hetnpu.whatif.llm import memory

    c = load_config(model)
    chips = tp * pp
    name = topology.name
    check_split(heads=c.heads, kv_heads=c.kv_heads, layers=c.layers, tp=tp, pp=pp, where=c.name)
    mem = memory(
        _shard(model, tp).with_layers(c.layers // pp),
        npu_spec(chip).hbm_bytes,
        batch=batch,
        prompt=prompt,
        generate=generated,
        precision="fp16",
    )
    hbm = mem.total
    if not mem.fits:
        return Point(chips, tp, pp, batch, name, False, hbm, note="does not fit in HBM")
    ranks = topology.device_names()
    micro = pp if pp > 1 and batch % pp == 0 else 1

    def get(phase: str, b: int, seq: int, kv_len: int) -> LayerTime:
        key = (model, chip, tp, phase, b, seq, kv_len)
        found = (times if times is not None else {}).get(key)
        return found if found is not None else layer_time(*key)

    def comm(b: int, seq: int) -> tuple[float, float]:
        hidden = b * seq * c.hidden * _FP16
        ar = 0.0 if tp == 1 else closed_form_s("all-reduce", ranks[:tp], hidden, topology)
        p2p = (
            0.0 if pp == 1 else closed_form_s("send-recv", [ranks[0], ranks[tp]], hidden, topology)
        )
        return ar, p2p

    per_stage = c.layers // pp
    ttft = None
    if "prefill" in phases:
        pre = get("prefill", batch, prompt, 0)
        ar, p2p = comm(batch, prompt)
        ttft = (pp * per_stage * (pre.layer_s + 2 * ar) + (pp - 1) * p2p + pre.rest_s) * 1e3
    if "decode" not in phases:
        ar_ms = None if ttft is None else c.layers * 2 * ar * 1e3
        return Point(chips, tp, pp, batch, name, True, hbm, ttft_ms=ttft, allreduce_ms=ar_ms)
    dec = get("decode", batch // micro, 1, _context(prompt, generated))
    ar, p2p = comm(batch // micro, 1)
    stage = per_stage * (dec.layer_s + 2 * ar)
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
        allreduce_ms=c.layers * 2 * ar * 1e3,
        note=f"{micro} micro-batches" if micro > 1 else "",
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
    named ``topologies``. Each split runs on the smallest topology with enough NPUs.

    The distinct layer simulations run through the sweep machinery's executor: this process
    (``workers=1``), a local process pool, or a Dask cluster (``scheduler`` address).

    Raises
    ------
    ConfigError
        Unknown target, model, chip or topology.
    """
    from hetnpu.models.decoder.config import load_config
    from hetnpu.whatif.sweep import _BROKEN_HINT, _executor

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
        for pp in (d for d in range(1, largest // tp + 1) if c.layers % d == 0):
            topo = next(t for t in topos if t.devices >= tp * pp)
            try:
                from hetnpu.scheduler.parallel import check_split

                check_split(heads=c.heads, kv_heads=c.kv_heads, layers=c.layers, tp=tp, pp=pp)
            except HetnpuError:
                continue
            candidates.append((tp, pp, topo))
    # Memory first: only configurations that fit need simulating.
    fitting = [
        (tp, pp, topo)
        for tp, pp, topo in candidates
        if step_point(model, chip, topo, tp, pp, batch, prompt=prompt, generated=generated,
                      phases=()).fits
    ]  # fmt: skip
    keys: set[tuple] = set()
    for tp, pp, _ in fitting:
        micro = pp if pp > 1 and batch % pp == 0 else 1
        if target == "ttft_ms":
            keys.add((model, chip, tp, "prefill", batch, prompt, 0))
        keys.add((model, chip, tp, "decode", batch // micro, 1, _context(prompt, generated)))
    ordered = sorted(keys)
    with _executor(workers, scheduler, executor) as pool:
        if pool is None:
            results = [_layer_task(k) for k in ordered]
        else:
            try:
                results = list(pool.map(_layer_task, ordered))
            except BrokenProcessPool:
                raise ConfigError("the simulation processes died" + _BROKEN_HINT) from None
    times = dict(zip(ordered, results, strict=True))
    points = []
    for tp, pp, topo in candidates:
        if (tp, pp, topo) not in fitting:
            points.append(
                step_point(model, chip, topo, tp, pp, batch, prompt=prompt, generated=generated,
                           phases=())
            )  # fmt: skip
            continue
        phases = ("prefill", "decode") if target == "ttft_ms" else ("decode",)
        points.append(
            step_point(model, chip, topo, tp, pp, batch, prompt=prompt, generated=generated,
                       times=times, phases=phases)
        )  # fmt: skip
    points = [_clean(p) for p in points]
    meeting = [p for p in points if _meets(p, target, value)]
    metric = {
        "per_token_ms": lambda p: p.per_token_ms,
        "ttft_ms": lambda p: p.ttft_ms,
        "tokens_per_s": lambda p: -(p.tokens_per_s or 0.0),
    }[target]
    answer = min(meeting, key=lambda p: (p.chips, metric(p), p.tp)) if meeting else None
    points.sort(key=lambda p: (p.chips, p.tp))
    return SearchResult(answer, tuple(points), time.perf_counter() - start, target, value)


def _context(prompt: int, generated: int) -> int:
    """The cache length a decode step is timed at: mid-generation, the mean over the
    ``generated`` steps of a cache growing from ``prompt`` tokens."""
    return prompt + generated // 2


def _clean(p: Point) -> Point:
    if not p.fits:
        return dataclasses.replace(p, ttft_ms=None, per_token_ms=None, allreduce_ms=None)
    return p
