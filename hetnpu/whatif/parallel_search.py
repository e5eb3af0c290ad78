"""How many NPUs a decoder LLM needs: its step time under tensor, pipeline and expert
parallelism on a topology, and the search for the fewest chips that meet a latency or
throughput target.

A step is timed by parts, each from the simulators:

- **one rank's shard of the model**: the decoder with ``heads/tp`` query heads,
  ``kv_heads/tp`` K/V heads (one each when tp exceeds them: Megatron replicates them),
  ``intermediate/tp`` FFN width (``expert_intermediate/tp`` of every expert of an MoE model
  without EP) and ``vocab/tp`` embedding and LM-head rows, timed by the single-NPU LLM model
  (:func:`hetnpu.whatif.llm.phase_time`: the fused graph simulated cycle by cycle, one layer
  replayed for all, big prompt batches extrapolated). A shard of 2 and of 3 layers gives the
  time of a layer (their difference) and of the rest (embedding, final norm, LM head); a
  pipeline stage runs ``layers/pp`` layers, the last one the rest;
- **two all-reduces per layer** of the hidden state (after attention and after the FFN),
  [batch, seq, hidden] fp16, over the TP group on the topology's links, each its HCCL time on
  idle links (:func:`hetnpu.simulator.collectives.closed_form_s`, which the collectives tests
  pin to the simulated time); they sit on the critical path (nothing overlaps them in a
  layer);
- **a send/recv between pipeline stages** of the hidden state.

**Expert parallelism** (an MoE model, ``ep > 1``) follows vllm-ascend's all-to-all MoE with
sequence parallelism (``vllm_ascend/ops/fused_moe/prepare_finalize.py``,
``PrepareAndFinalizeWithAll2All``: the tokens are split over the TP ranks before the MoE and
all-gathered after; with ``replace_allreduce`` the attention's all-reduce becomes a
reduce-scatter, "TP AG → Attn → TP RS"). The EP group is the stage's TP group (``ep = tp``:
vllm's EP size is TP × DP, and DP is 1 here), so a layer on one rank is:

- all-gather of the hidden state, attention over ``heads/tp`` heads on all ``T = batch ×
  seq`` tokens, reduce-scatter of its output: rank r keeps tokens ``T/ep``;
- the router on its tokens, then **dispatch**: an all-to-all sends each (token, choice) row
  to the rank holding its expert (``experts/ep`` whole experts per rank, no TP inside an
  expert), each rank holding ``ceil(T/ep) · k`` rows of ``hidden`` fp16 (MC2's
  ``npu_moe_distribute_dispatch`` does the same all-to-all fused with the kernel);
- the grouped matmul of its experts on the ``T·k/ep`` rows they receive (an even load, as
  the ``even`` MoE form times it), then **combine**: the second all-to-all brings the rows
  back, and rank r mixes its tokens' k rows.

The layer's compute on one rank is ``P + Q - R``: ``P`` is the layer of a shard with
``experts/ep`` experts (``k' = min(k, experts/ep)`` picked, over ``T' = ceil(T·k / (ep·k'))``
tokens, so each expert gets the ``T·k/experts`` rows it gets in the model), ``Q`` and ``R``
the layer of the attention shard with a 16-wide dense FFN (:data:`PROBE_FFN`) at ``T`` and at
``T'`` tokens: ``P - R`` leaves the MoE of ``T'`` tokens, ``Q`` adds the attention of ``T``.
What remains is the 16-wide FFN's difference between ``T`` and ``T'`` tokens (an
assumption that it is negligible: one Cube fractal of work). The rest (embedding, LM head)
is ``Q``'s.

A decode step is timed at the mean cache length of the generation, ``prompt +
generated/2`` tokens. Decode latency per token with ``pp`` stages runs ``m = pp``
micro-batches of ``batch/pp`` sequences (when pp divides the batch) so the pipeline stays
full: every sequence gets a token each round of ``pp`` stage-times. Prefill (time to first
token) runs the whole batch through the stages one after another. A configuration fits when
:func:`hetnpu.whatif.llm.memory` of a stage's shard (its weights, KV cache, activations and
workspace; an EP rank's shard holds ``experts/ep`` experts) fits the chip's HBM.

Left out: overlap of collectives with compute (MC2 fuses the all-to-alls with the grouped
matmul), host launch costs, MoE load imbalance (every expert gets the same rows), EP degrees
other than 1 and tp (EP across pipeline stages, data-parallel attention), the router's
replicated weights on an EP rank (it is counted for ``experts/ep`` experts: ``hidden ×
experts`` elements a layer), and a shared expert's split (an EP rank runs it whole on its
tokens).
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

from hetnpu.errors import ConfigError, HetnpuError, ScheduleError

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
PROBE_FFN = 16
"""FFN width of the attention-only shard an EP layer is timed with (see the module docstring):
one 16-wide Cube fractal, so its own time barely changes with the tokens (assumption)."""


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


def _shard(model: str, tp: int, ep: int = 1) -> Any:
    """One rank's shard: attention heads and vocabulary over ``tp``; an MoE model's experts
    split by width over ``tp`` (``ep == 1``) or whole, ``experts/ep`` of them per rank."""
    from hetnpu.models.decoder.config import load_config

    c = load_config(model)
    shard = dataclasses.replace(
        c,
        heads=c.heads // tp,
        kv_heads=max(1, c.kv_heads // tp),
        intermediate=c.intermediate // tp,
        vocab=math.ceil(c.vocab / tp),
    )
    if not c.moe:
        return shard
    if ep == 1:
        return dataclasses.replace(
            shard,
            expert_intermediate=c.expert_intermediate // tp,
            shared_expert_intermediate=c.shared_expert_intermediate // tp,
        )
    local = c.experts // ep
    return dataclasses.replace(
        shard, experts=local, experts_per_token=min(c.experts_per_token, local)
    )


def _attention_shard(model: str, tp: int) -> Any:
    """The TP shard's attention with a :data:`PROBE_FFN`-wide dense FFN instead of the MoE."""
    return dataclasses.replace(
        _shard(model, tp),
        intermediate=PROBE_FFN,
        experts=0,
        experts_per_token=0,
        expert_intermediate=0,
        shared_expert_intermediate=0,
    )


def ep_tokens(model: str, ep: int, phase: str, batch: int, seq: int) -> tuple[int, int]:
    """(batch, seq) of the pass whose MoE on an ``experts/ep`` shard does one EP rank's
    expert work: ``T' = ceil(T·k / (ep·k'))`` tokens (see the module docstring)."""
    from hetnpu.models.decoder.config import load_config

    c = load_config(model)
    k, local_k = c.experts_per_token, _shard(model, 1, ep).experts_per_token
    if phase == "decode":
        return math.ceil(batch * k / (ep * local_k)), seq
    return batch, math.ceil(seq * k / (ep * local_k))


def _two_three(shard: Any, spec: Any, phase: str, batch: int, seq: int, kv_len: int) -> LayerTime:
    from hetnpu.whatif.llm import phase_time

    two, three = (
        phase_time(shard.with_layers(n), spec, "fp16", phase=phase, batch=batch, seq=seq,
                   kv_len=kv_len).seconds
        for n in (2, 3)
    )  # fmt: skip
    layer = three - two
    return LayerTime(layer, max(two - 2 * layer, 0.0))


@functools.lru_cache(maxsize=256)
def layer_time(
    model: str, chip: str, tp: int, phase: str, batch: int, seq: int, kv_len: int, ep: int = 1
) -> LayerTime:
    """One rank's layer and rest times on ``chip``: its TP shard, or with ``ep > 1`` its
    attention under TP and its experts under EP (see the module docstring)."""
    from hetnpu.devices.presets import npu_spec

    spec = npu_spec(chip)
    if ep == 1:
        return _two_three(_shard(model, tp), spec, phase, batch, seq, kv_len)
    b, s = ep_tokens(model, ep, phase, batch, seq)
    experts = _two_three(_shard(model, tp, ep), spec, phase, b, s, kv_len)
    attention = _two_three(_attention_shard(model, tp), spec, phase, batch, seq, kv_len)
    probe = _two_three(_attention_shard(model, tp), spec, phase, b, s, kv_len)
    return LayerTime(experts.layer_s - probe.layer_s + attention.layer_s, attention.rest_s)


def ep_collectives_s(
    model: str, topology: Any, tp: int, ep: int, batch: int, seq: int
) -> tuple[float, float]:
    """Per layer, (the TP group's collectives, the two all-to-alls) of ``batch × seq``
    tokens in seconds: two all-reduces of the hidden state with ``ep == 1``; with EP a
    reduce-scatter and an all-gather of it, and a dispatch and a combine each of
    ``ceil(T/ep) · k`` rows of ``hidden`` fp16 per rank."""
    from hetnpu.models.decoder.config import load_config
    from hetnpu.simulator.collectives import closed_form_s

    c = load_config(model)
    ranks = topology.device_names()
    hidden = batch * seq * c.hidden * _FP16
    if tp == 1:
        return 0.0, 0.0
    if ep == 1:
        return 2 * closed_form_s("all-reduce", ranks[:tp], hidden, topology), 0.0
    tp_s = closed_form_s("reduce-scatter", ranks[:tp], hidden, topology) + closed_form_s(
        "all-gather", ranks[:tp], hidden, topology
    )
    rows = math.ceil(batch * seq / ep) * c.experts_per_token
    a2a = closed_form_s("all-to-all", ranks[:ep], rows * c.hidden * _FP16, topology)
    return tp_s, 2 * a2a


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
        _shard(model, tp, ep).with_layers(c.layers // pp),
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
            _shard(model, tp).with_layers(c.layers // pp),
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
            try:
                results = list(pool.map(_layer_task, ordered))
            except BrokenProcessPool:
                raise ConfigError("the simulation processes died" + _BROKEN_HINT) from None
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
