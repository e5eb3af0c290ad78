"""One rank's share of a decoder LLM step under tensor and expert parallelism, timed by the
simulators: its layer and the rest of its model (:func:`layer_time`), and the collectives
of a layer (:func:`ep_collectives_s`). :mod:`hetnpu.whatif.parallel_search` composes them
into steps and searches the splits.

- **A TP shard** is the decoder with ``heads/tp`` query heads, ``kv_heads/tp`` K/V heads (one
  each when tp exceeds them: Megatron replicates them), ``intermediate/tp`` FFN width
  (``expert_intermediate/tp`` of every expert of an MoE model without EP) and ``vocab/tp``
  embedding and LM-head rows, timed by the single-NPU LLM model
  (:func:`hetnpu.whatif.llm.phase_time`: the fused graph simulated cycle by cycle, one layer
  replayed for all, big prompt batches extrapolated). A shard of 2 and of 3 layers gives the
  time of a layer (their difference) and of the rest (embedding, final norm, LM head).
- **Collectives**: two all-reduces per layer of the hidden state (after attention and after
  the FFN), [batch, seq, hidden] fp16, over the TP group, each its HCCL time on idle links
  (:func:`hetnpu.simulator.collectives.closed_form_s`, which the collectives tests pin to the
  simulated time).
- **Expert parallelism** (an MoE model, ``ep > 1``) follows vllm-ascend's all-to-all MoE with
  sequence parallelism (``vllm_ascend/ops/fused_moe/prepare_finalize.py``,
  ``PrepareAndFinalizeWithAll2All``: the tokens are split over the TP ranks before the MoE
  and all-gathered after; with ``replace_allreduce`` the attention's all-reduce becomes a
  reduce-scatter, "TP AG → Attn → TP RS"). The EP group is the stage's TP group (``ep = tp``:
  vllm's EP size is TP × DP, and DP is 1 here), so a layer on one rank is: all-gather of the
  hidden state, attention over ``heads/tp`` heads on all ``T = batch × seq`` tokens,
  reduce-scatter of its output (rank r keeps ``T/ep`` tokens); the router on its tokens, then
  **dispatch**: an all-to-all sends each (token, choice) row to the rank holding its expert
  (``experts/ep`` whole experts per rank, no TP inside an expert), each rank holding
  ``ceil(T/ep) · k`` rows of ``hidden`` fp16 (MC2's ``npu_moe_distribute_dispatch`` does the
  same all-to-all fused with the kernel); the grouped matmul of its experts on the
  ``T·k/ep`` rows they receive (an even load, as the ``even`` MoE form times it), then
  **combine**: the second all-to-all brings the rows back, and rank r mixes its tokens' k
  rows.

The EP layer's compute on one rank is ``P + Q - R``: ``P`` is the layer of a shard with
``experts/ep`` experts (``k' = min(k, experts/ep)`` picked, over ``T' = ceil(T·k / (ep·k'))``
tokens, so each expert gets the ``T·k/experts`` rows it gets in the model), ``Q`` and ``R``
the layer of the attention shard with a 16-wide dense FFN (:data:`PROBE_FFN`) at ``T`` and at
``T'`` tokens: ``P - R`` leaves the MoE of ``T'`` tokens, ``Q`` adds the attention of ``T``.
What remains is the 16-wide FFN's difference between ``T`` and ``T'`` tokens (an
assumption that it is negligible: one Cube fractal of work). The rest (embedding, LM head)
is ``Q``'s. In a big prompt batch ``P`` and ``R`` need not cancel exactly: each is
extrapolated from passes sized by its own MACs (:data:`hetnpu.whatif.llm.PREFILL_MACS`),
so the expert shard's passes may be smaller than the probe's, with L2 cut further (Mixtral
TP2/EP2 at 16 x 1024: the EP layer 0.9 % over its whole-batch simulation).

Left out: the router's replicated weights on an EP rank (it is counted for ``experts/ep``
experts: ``hidden × experts`` elements a layer), and a shared expert's split (an EP rank runs
it whole on its tokens).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PROBE_FFN",
    "LayerTime",
    "attention_shard",
    "ep_collectives_s",
    "ep_tokens",
    "layer_time",
    "shard",
]

_FP16 = 2  # bytes of an fp16 activation

PROBE_FFN = 16
"""FFN width of the attention-only shard an EP layer is timed with (see the module docstring):
one 16-wide Cube fractal, so its own time barely changes with the tokens (assumption)."""


@dataclass(frozen=True)
class LayerTime:
    """One layer's shard and the rest of the model on one chip, simulated (seconds)."""

    layer_s: float
    rest_s: float


def shard(model: str, tp: int, ep: int = 1) -> Any:
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


def attention_shard(model: str, tp: int) -> Any:
    """The TP shard's attention with a :data:`PROBE_FFN`-wide dense FFN instead of the MoE."""
    return dataclasses.replace(
        shard(model, tp),
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
    k, local_k = c.experts_per_token, shard(model, 1, ep).experts_per_token
    if phase == "decode":
        return math.ceil(batch * k / (ep * local_k)), seq
    return batch, math.ceil(seq * k / (ep * local_k))


def _two_three(cfg: Any, spec: Any, phase: str, batch: int, seq: int, kv_len: int) -> LayerTime:
    from hetnpu.whatif.llm import phase_time

    two, three = (
        phase_time(cfg.with_layers(n), spec, "fp16", phase=phase, batch=batch, seq=seq,
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
        return _two_three(shard(model, tp), spec, phase, batch, seq, kv_len)
    b, s = ep_tokens(model, ep, phase, batch, seq)
    experts = _two_three(shard(model, tp, ep), spec, phase, b, s, kv_len)
    attention = _two_three(attention_shard(model, tp), spec, phase, batch, seq, kv_len)
    probe = _two_three(attention_shard(model, tp), spec, phase, b, s, kv_len)
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
