"""LLM inference on one NPU: time to first token, per-token decode latency, memory fit.

:func:`estimate` answers for a decoder (:mod:`hetnpu.models.decoder`), a chip preset, a batch,
a prompt length and a number of generated tokens. Its times come from the cycle-level
simulator (the opset-23 fused graph, as torch_npu/torchair runs it: flash attention, fused
RMSNorm and RoPE), made fast by replaying what repeats:

- **Layers.** Every layer has the same ops and shapes, and each reads its own weights from
  HBM (no layer finds another's in L2), so one layer simulated after the embedding is what
  every layer costs: a decode step is simulated with one layer, whose ops are counted
  ``layers`` times, plus the embedding and the LM head once. A prompt pass is simulated with
  two: the second layer pays the write-back of the first one's dirty activations that its own
  evict from L2, as every later layer does, so it is counted ``layers - 1`` times.
- **Batch (prefill).** Past ``3b`` sequences (``b`` sequences of a layer cost
  :data:`PREFILL_MACS`), a prompt pass is simulated for ``b`` and ``2b`` sequences, each with
  L2 cut to its share of the batch, and extrapolated linearly to ``B``: every further ``b``
  sequences cost what the second ``b`` did, once the Cube cores run many waves and the passes'
  activations spill from L2 as the whole batch's do.
- **Decode steps.** A step's time grows linearly with the KV length (the cache read is linear
  in it, the rest does not depend on it), so steps are simulated at :data:`DECODE_SAMPLES` KV
  lengths spread over the generation and the others interpolated; their sum is the decode time.

Each shortcut is tested against the full simulation on a small model (``tests/llm``): layers,
decode steps and the prompt-batch extrapolation within 2 % (see :data:`PREFILL_MACS`).

Memory: weights, KV cache, activations and workspace against the chip's HBM, with the largest
batch and context that fit (:mod:`hetnpu.whatif.llm_memory`, re-exported here).

MoE layers are timed with an even expert load (``build_decoder(moe="even")``); the KV cache is
appended in place unless ``kv_cache="concat"`` asks for the copy Hugging Face's ``torch.cat``
makes every step, or ``"concat-repeat"`` for that and the copy of each K/V head per query head
that Hugging Face's ``repeat_kv`` (and ChatGLM's ``expand().contiguous()``) makes before
attention.

Graphs compiled with symbolic shapes (``dynamic=True``) wait for the host's per-op scheduling
of their varying ops (:mod:`hetnpu.whatif.llm_host`); a sunk graph (the default) never does.
Every pass, prompt or decode step, is one graph run the host starts and waits for, so it pays
the chip's ``model_execute_s`` once (0 on presets where no row calibrates it).

Left out: other host-side time (tokenisation, sampling, the framework's per-step Python),
speculative decoding, paged-attention block granularity, MoE load imbalance,
multi-chip parallelism (:mod:`hetnpu.whatif.parallel_search` builds on this module for it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hetnpu.devices.presets import load_npu, names
from hetnpu.devices.spec import NpuSpec
from hetnpu.errors import ConfigError
from hetnpu.models.decoder import DecoderConfig, build_decoder, load_config
from hetnpu.simulator import SimResult, simulate
from hetnpu.simulator.frontend import torch_frontend
from hetnpu.simulator.spec_key import chip_key
from hetnpu.whatif.llm_host import varying_ops
from hetnpu.whatif.llm_memory import WORKSPACE_BYTES, Memory, memory
from hetnpu.whatif.llm_phase import PhaseTime
from hetnpu.whatif.llm_phase import summed as _phase

__all__ = [
    "DECODE_SAMPLES",
    "PRECISIONS",
    "PREFILL_MACS",
    "WORKSPACE_BYTES",
    "LlmEstimate",
    "Memory",
    "PhaseTime",
    "default_chip",
    "estimate",
    "memory",
    "phase_time",
]

PRECISIONS: Mapping[str, str] = {"fp16": "fp16", "bf16": "fp16", "fp32": "fp32"}
"""LLM precision → the simulator's precision mode. bf16 runs as fp16 does on the 910B: the
same 2-byte elements and the same 16x16x16 Cube fractal (ascend-facts §1.1: DtypeMKN default
(fp16/bf16) = 16,16,16; A2 ``support_bf16=1``)."""

PREFILL_MACS = 5e11
"""Multiply-accumulates of one layer in the smaller of the two prompt passes a large batch is
extrapolated from (at least one sequence): 2048 rows of a 7B-class layer (Qwen2-7B: 237 M per
token at a 1024-token prompt). A budget in MACs rather than rows, because what the passes cost
to simulate follows the MACs, and so, roughly, does how many waves each MatMul runs over the
Cube cores: a narrow model's 2048-row pass splits its MatMuls into too few blocks to be what
every further pass is (a 1024-wide layer: +8 % to +13 % from 1024-row passes, within 1.6 % from
2048 rows and more). A batch of up to three passes' sequences is simulated whole: the two
passes would cost as much.

Each pass is simulated with L2 cut in proportion to its share of the batch, so its activations
(the tensors that grow with the batch) fit L2 or spill to HBM as the whole batch's do. This is
the scaling of miniature simulations (Waldspurger et al., "Cache Modeling and Optimization using
Miniature Simulations", USENIX ATC 2017: a sampled reference stream against a cache scaled by
the sampling rate), applied to whole sequences: the tensors that do not grow with the batch
(weights, a prompt mask, RoPE tables) are not scaled, and take a larger share of the smaller
L2, which is the likely source of the small excess that remains. With L2 left whole, tensors
that fit it at 4096 rows but stream from HBM at the whole batch made the extrapolation fast
(Qwen2-7B's hidden-size activations: 29 MB at 4096 rows, 117 MB at 16384, against the 910B4's
96 MB). Measured by ``python benchmarks/llm.py`` at batch 16 x 1024 tokens on the 910B4,
against the whole batch simulated (layers replayed in both):

==============================  ===================  ==================
model                           L2 whole (before)    L2 scaled
==============================  ===================  ==================
Qwen2-7B                        -1.8 %               +0.4 %
ChatGLM3-6B (as measured)       -0.3 %               +0.6 %
==============================  ===================  ==================

Against every layer and the whole batch simulated (``replay=False``, 233 s), the Qwen2-7B
figure is the same +0.4 %. The passes' L2 size depends on the batch, so each batch of a sweep
simulates its own two passes (their lowered ops are shared: the lowering cache leaves L2's size
out)."""

DECODE_SAMPLES = 4
"""KV lengths at which decode steps are simulated (interpolated between)."""


def default_chip() -> str:
    """``ascend910b4`` (one 910B of an Atlas 800I A2) when the preset exists, else ascend910b."""
    return "ascend910b4" if "ascend910b4" in names() else "ascend910b"


@dataclass(frozen=True)
class LlmEstimate:
    """What :func:`estimate` answers."""

    model: str
    chip: str
    precision: str
    batch: int
    prompt: int
    generate: int
    ttft_s: float
    decode_s: float
    """Time of all generated tokens after the first."""
    per_token_s: tuple[tuple[int, float], ...]
    """(KV length, seconds of one decode step) at the sampled lengths."""
    memory: Memory
    prefill: PhaseTime
    decode: PhaseTime
    """The decode step at the longest sampled KV length."""
    wall_s: float
    overrides: Mapping[str, Any] = field(default_factory=dict)
    graph: Mapping[str, str] = field(default_factory=dict)
    """The graph's form that was timed: ``kv_cache``, ``rope`` and ``mask``."""

    @property
    def mean_token_s(self) -> float:
        return self.decode_s / max(self.generate - 1, 1)

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second over the whole request (prefill included), batch-wide."""
        total = self.ttft_s + self.decode_s
        return self.batch * self.generate / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        mem = asdict(self.memory)
        mem["total"], mem["fits"] = self.memory.total, self.memory.fits
        return {
            "model": self.model,
            "chip": self.chip,
            "precision": self.precision,
            "batch": self.batch,
            "prompt": self.prompt,
            "generate": self.generate,
            "ttft_s": self.ttft_s,
            "decode_s": self.decode_s,
            "mean_token_s": self.mean_token_s,
            "tokens_per_s": self.tokens_per_s,
            "per_token_s": [{"kv_len": k, "seconds": s} for k, s in self.per_token_s],
            "memory": mem,
            "prefill": _phase_dict(self.prefill),
            "decode": _phase_dict(self.decode),
            "overrides": dict(self.overrides),
            "graph": dict(self.graph),
            "wall_s": self.wall_s,
        }


def _phase_dict(p: PhaseTime) -> dict[str, Any]:
    return {"seconds": p.seconds, "by_class": dict(p.by_class), "bound": dict(p.bound)}


_SIMULATED: OrderedDict[tuple[Any, ...], SimResult] = OrderedDict()
_SIMULATED_MAX = 16


def _simulate(
    config: DecoderConfig, spec: NpuSpec, precision: str, layers: int, **shape: Any
) -> SimResult:
    # Keyed by what the simulated graph and chip are: shards of 2 and 3 layers replay the same
    # simulated layers (parallel_search.layer_time asks for both), so it runs once.
    key = (config.with_layers(layers), chip_key(spec), precision, tuple(sorted(shape.items())))
    if key in _SIMULATED:
        _SIMULATED.move_to_end(key)
        return _SIMULATED[key]
    res = _simulate_graph(config, spec, precision, layers, shape)
    _SIMULATED[key] = res
    if len(_SIMULATED) > _SIMULATED_MAX:
        _SIMULATED.popitem(last=False)
    return res


def _simulate_graph(
    config: DecoderConfig, spec: NpuSpec, precision: str, layers: int, shape: Mapping[str, Any]
) -> SimResult:
    model = build_decoder(config, weights="absent", layers=layers, moe="even", **shape)
    with torch_frontend():
        res = simulate(model, spec, precision=PRECISIONS[precision])
    if res.unsupported:
        u = res.unsupported[0]
        raise ConfigError(f"{config.name}: op {u.name} ({u.op_type}) cannot be timed: {u.reason}")
    return res


def phase_time(
    config: DecoderConfig,
    spec: NpuSpec,
    precision: str,
    *,
    phase: str,
    batch: int,
    seq: int,
    kv_len: int,
    replay: bool = True,
    kv_cache: str = "inplace",
    rope: str | None = None,
    mask: str = "is_causal",
    dynamic: bool = False,
    attention: str = "fused",
) -> PhaseTime:
    """Simulated time of one pass (see the module docstring for the replay); ``replay=False``
    simulates every layer and the whole batch. ``dynamic`` times the pass as a dynamic-shape
    graph whose varying ops the host schedules (:mod:`hetnpu.whatif.llm_host`).
    ``attention="decomposed"`` times the basic-op form (attention, RoPE and RMSNorm unfused:
    :func:`~hetnpu.models.decoder.build_decoder`'s ``attention``)."""
    # The LLM graphs are the fused form: None and "fused" are one graph.
    shape = {"phase": phase, "seq": seq, "kv_len": kv_len, "kv_cache": kv_cache,
             "rope": rope or "fused", "mask": mask}  # fmt: skip
    if attention != "fused":
        shape["attention"] = attention
    host = dynamic and bool(spec.host_op_s)

    def varying(layers: int, sim_batch: int) -> frozenset[str] | None:
        # The batch is symbolic when the real batch is above 1, whatever the simulated pass's.
        return varying_ops(config, layers, sim_batch, shape, batch > 1) if host else None

    if not replay or config.layers == 1:
        res = _simulate(config, spec, precision, config.layers, batch=batch, **shape)
        return _phase(res, spec, {}, varying(config.layers, batch))

    # A prompt pass leaves each layer's activations dirty in L2, and the next layer's evict and
    # write them back: the second of two simulated layers is the steady state every later layer
    # repeats. A decode step's activations are small; one layer stands for all.
    sim_layers = 2 if phase == "prefill" else 1
    weights = (
        {0: 1.0, 1: float(config.layers - 1)} if sim_layers == 2 else {0: float(config.layers)}
    )

    def pass_of(sim_batch: int) -> SimResult:
        # A pass over fewer sequences than the batch sees an L2 cut in the same proportion, so
        # its activations fit L2 or spill to HBM as the whole batch's do (a miniature
        # simulation: see PREFILL_MACS).
        sim_spec = spec
        if sim_batch < batch:
            sim_spec = spec.model_copy(update={"l2_bytes": spec.l2_bytes * sim_batch // batch})
        return _simulate(config, sim_spec, precision, sim_layers, batch=sim_batch, **shape)

    most = max(1, int(PREFILL_MACS // (seq * _token_layer_macs(config, seq))))
    if phase == "decode" or batch <= 3 * most:
        return _phase(pass_of(batch), spec, weights, varying(sim_layers, batch))
    # Two batch sizes b and 2b, extrapolated linearly to B op by op: each further b sequences
    # cost each op what the second b did (the fixed part of the pass, and the first wave's,
    # counted once). The host is waited for afterwards: its time does not grow with the batch.
    return _phase(pass_of(most), spec, weights, varying(sim_layers, most),
                  toward=pass_of(2 * most), reps=(batch - most) / most)  # fmt: skip


def _token_layer_macs(config: DecoderConfig, seq: int) -> int:
    """MACs one prompt token costs one layer: its projections, its FFN (the experts it is
    routed to) and its attention over half the prompt on average (QKᵀ and PV)."""
    h, q, kv = config.hidden, config.heads * config.head_dim, config.kv_heads * config.head_dim
    proj = h * (q + 2 * kv) + q * h
    ffn = 3 * h * config.active_intermediate + h * config.experts  # and the router, if any
    return proj + ffn + q * seq


def estimate(
    model: Any,
    chip: str | NpuSpec | None = None,
    *,
    batch: int = 1,
    prompt: int = 1024,
    generate: int = 128,
    precision: str = "fp16",
    overrides: Mapping[str, Any] | None = None,
    replay: bool = True,
    samples: int = DECODE_SAMPLES,
    require_fit: bool = False,
    kv_cache: str = "inplace",
    rope: str | None = None,
    mask: str = "is_causal",
    dynamic: bool = False,
) -> LlmEstimate:
    """TTFT, decode latency, tokens/s and memory of ``model`` on ``chip``.

    Parameters
    ----------
    model
        A shipped config name, a ``config.json`` path, a dict or a DecoderConfig.
    chip
        A preset name or path (default :func:`default_chip`), or an ``NpuSpec``.
    batch, prompt, generate
        Sequences, prompt tokens each, tokens generated each (the first comes from prefill).
    precision
        fp16, bf16 or fp32 (:data:`PRECISIONS`).
    overrides
        Preset keys to change (``{"hbm_bytes_per_s": 1.2e12}``), as ``hetnpu sweep`` takes.
    replay
        Use the fast replay (default) or simulate every layer, sequence and step.
    samples
        KV lengths at which decode steps are simulated (with ``replay``).
    require_fit
        Raise :class:`ConfigError` when the request does not fit the chip's HBM.
    kv_cache
        ``inplace`` (the attention kernel appends to a preallocated cache), ``concat`` (the
        cache is copied into a longer one every step, as ``torch.cat`` in Hugging Face's
        modeling code does) or ``concat-repeat`` (and K/V copied per query head, as its
        ``repeat_kv``): :func:`~hetnpu.models.decoder.build_decoder`'s ``kv_cache``.
    rope
        ``decomposed`` times the rotary embedding in basic ops, as modeling code that keeps its
        Python RoPE runs (default: the fused RotaryEmbedding kernel);
        :func:`~hetnpu.models.decoder.build_decoder`'s ``rope``.
    mask
        ``tensor`` gives the prompt's flash attention its causal mask as a tensor, which it
        computes every key block for (default ``is_causal``, which skips the blocks past the
        diagonal); :func:`~hetnpu.models.decoder.build_decoder`'s ``mask``.
    dynamic
        Time the graphs as compiled with symbolic shapes (``torch.compile(dynamic=True)``
        with a cache grown by concatenation, as torchair's ChatGLM3 script runs): the ops
        whose shapes vary are host-scheduled at the chip's ``host_op_s`` each, and a pass
        waits for the host when its ops are shorter (:mod:`hetnpu.whatif.llm_host`). Default:
        the whole graph sinks to the device.

    Raises
    ------
    ConfigError
        A bad model, chip, size or precision; with ``require_fit``, a request that does not fit
        (naming the bytes needed and available).
    """
    config = load_config(model)
    for key, value in (("batch", batch), ("prompt", prompt), ("generate", generate)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if prompt + generate > config.max_positions:
        raise ConfigError(
            f"{config.name}: prompt {prompt} + generate {generate} = {prompt + generate} tokens "
            f"exceeds its {config.max_positions} positions (max_position_embeddings)"
        )
    if isinstance(chip, NpuSpec):
        spec = chip
    else:
        spec = load_npu(chip or default_chip(), dict(overrides or {}))
    mem = memory(config, spec.hbm_bytes, batch=batch, prompt=prompt, generate=generate,
                 precision=precision)  # fmt: skip
    if require_fit and not mem.fits:
        raise ConfigError(
            f"{config.name} at batch {batch}, context {prompt + generate}: needs "
            f"{mem.total / 2**30:.1f} GiB (weights {mem.weights / 2**30:.1f}, KV cache "
            f"{mem.kv_cache / 2**30:.1f}, activations {mem.activations / 2**30:.1f}, workspace "
            f"{mem.workspace / 2**30:.1f}) but {spec.name} has {spec.hbm_bytes / 2**30:.1f} GiB; "
            f"largest batch that fits: {mem.max_batch}, largest context: {mem.max_context}"
        )
    shape = {"batch": batch, "kv_cache": kv_cache, "rope": rope, "dynamic": dynamic}
    prompt_shape = {**shape, "mask": mask}
    prefill = phase_time(config, spec, precision, phase="prefill", seq=prompt, kv_len=0,
                         replay=replay, **prompt_shape)  # fmt: skip
    steps = np.arange(prompt, prompt + generate - 1)  # KV length before each decode step
    decode: PhaseTime | None = None
    points: list[tuple[int, float]] = []
    wall = prefill.wall_s
    if len(steps):
        kvs = (
            steps
            if not replay
            else np.unique(
                np.linspace(steps[0], steps[-1], min(samples, len(steps))).round().astype(int)
            )
        )
        for kv in kvs:
            decode = phase_time(config, spec, precision, phase="decode", seq=1, kv_len=int(kv),
                                replay=replay, **shape)  # fmt: skip
            points.append((int(kv), decode.seconds))
            wall += decode.wall_s
        xs, ys = zip(*points, strict=True)
        decode_s = float(np.interp(steps, xs, ys).sum())
    else:
        decode_s = 0.0
    if decode is None:
        decode = PhaseTime(0.0, {}, {}, 0.0)
    return LlmEstimate(
        model=config.name,
        chip=spec.name,
        precision=precision,
        batch=batch,
        prompt=prompt,
        generate=generate,
        ttft_s=prefill.seconds,
        decode_s=decode_s,
        per_token_s=tuple(points),
        memory=mem,
        prefill=prefill,
        decode=decode,
        wall_s=wall,
        overrides=dict(overrides or {}),
        graph={
            "kv_cache": kv_cache,
            "rope": rope or "fused",
            "mask": mask,
            "shapes": "dynamic" if dynamic else "static",
        },
    )
