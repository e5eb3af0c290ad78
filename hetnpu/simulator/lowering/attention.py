"""The fused transformer kernels CANN runs on the 910B: flash attention, RMSNorm and RoPE.

``Attention`` (opset 23) is lowered as CANN's fused attention (``npu_fusion_attention``;
``PromptFlashAttention`` for a prompt, ``IncreFlashAttention`` for a decode step): the scores
never reach HBM. Work is split into items of one batch entry, one key/value head and one block
of its query rows (the ``heads / kv_heads`` query heads of a group are stacked, so a grouped or
multi-query head's K and V stream from HBM once for the whole group, as the vendor kernels do
for GQA). An item streams its K and V rows (the past cache, read in place, then the new rows)
through the Cube: ``Q Kᵀ`` and ``P V`` are ``rows × T × head_dim`` MACs each, written here as
two K-streamed products (K rows as the B operand, then V rows), so the bytes each pulls from GM
are exactly the K and V bytes. A causal prompt (``is_causal``) skips the key blocks above the
diagonal: the query block ending at row ``s`` reads ``kv_len + s + 1`` keys. A mask input
alone does not: the kernel cannot know the mask's pattern, so it computes every block and
applies the mask to it, as CANN's prompt flash attention does in ``sparse_mode`` 0 (it
computes the band between ``preTokens`` and ``nextTokens`` and masks within it; CANN
ops-transformer ``docs/en/context/sparse_mode_introduction.md``): torchair's ChatGLM3 script
calls it with ``next_tokens=65535``, the whole square, its LLaMA script with
``next_tokens=0``, the causal half. A prompt's items are dealt to the cores in order, each
core's run ending where its share of the weight is reached, as the prompt kernel's tiling
balances them (CANN ops-adv ``prompt_flash_attention_tiling.cpp``,
``PromptFlashAttentionSplitNSNew``): a causal query block with no past before it weighs its
``k + 1`` key blocks, any other block the same as every other, and core ``i``'s run closes at
``(i + 1) · total / cores``. When there are fewer items than
Cube cores (a decode step of a small batch), each item's keys are split among the idle cores,
as CANN's fused attention does in its flash-decoding mode (CANN ops-transformer,
``attention/incre_flash_attention``: tiling field ``splitKVNum``, "number of S2 partitions
across cores"). ``RMSNormalization`` (CANN
``RmsNorm``) and ``RotaryEmbedding`` (``RotaryMul``/``ApplyRotaryPosEmb``) are Vector streams
over their input.

Left out: the softmax on the AIVs and its round trip through the GM workspace (the vendor
kernels pipeline it under the Cube's two products, C:V = 1:2 on the 910B, ascend-facts §1.9),
and flash decoding's combine of the partial results (a few rows per item);
the cache write is the new rows only (the cache is updated in place, torchair's
``scatter_update``), though the op's ONNX outputs are the whole present cache; the mask's own
reads (one byte or element per score, from L2); sliding windows; softcap; dropout.
"""

from __future__ import annotations

import math

from hetnpu.graph.ir import Graph, Node
from hetnpu.simulator.isa import Instr
from hetnpu.simulator.lowering.common import (
    LowerCtx,
    Lowered,
    Unsupported,
    check_instructions,
    node_in_out,
    shape_of,
)
from hetnpu.simulator.lowering.cube_template import cube_init_flags, cube_program
from hetnpu.simulator.lowering.vector_template import vector_lowering
from hetnpu.simulator.tiler import split_even, tile_cube

__all__ = [
    "ATTENTION_LOWERINGS",
    "RMS_NORM_PASSES",
    "ROPE_PASSES",
    "lower_attention",
    "lower_rms_norm",
    "lower_rotary",
]

RMS_NORM_PASSES = 4
"""Vector passes of a fused RMSNorm over its input (assumption): square, sum, scale by the
reciprocal root, multiply by gamma; one fewer than LayerNormalization's mean-and-variance."""

ROPE_PASSES = 4
"""Vector passes of a fused rotary embedding (assumption): x·cos, the rotated half times sin,
their sum, and the half swap (a gather within UB)."""

_Q_ROWS = 128
"""Query rows per flash-attention item (assumption: the vendor kernels' typical block of 128
rows; a decode step has fewer, ``heads / kv_heads``)."""

_MIN_SPLIT_KEYS = 512
"""Fewest keys a flash-decoding part streams (assumption: below it the partial results' write
and the combine cost more than the parallelism saves)."""


def _attention_shapes(node: Node, graph: Graph) -> tuple[int, int, int, int, int, int]:
    """(batch, q_heads, kv_heads, queries S, keys before the queries, head_dim) of an
    Attention node: the queries are the last S of the ``past + K`` keys."""
    q = shape_of(graph, node.inputs[0])
    k = shape_of(graph, node.inputs[1])
    past = node.inputs[4] if len(node.inputs) > 4 and node.inputs[4] else None
    if len(q) == 3:
        heads = int(node.attrs.get("q_num_heads", 0))
        kv_heads = int(node.attrs.get("kv_num_heads", 0))
        if heads < 1 or kv_heads < 1:
            raise Unsupported("3-D Attention without q_num_heads/kv_num_heads")
        batch, seq = q[0], q[1]
        head_dim = q[2] // heads
        new_keys = k[1]
    elif len(q) == 4:
        batch, heads, seq, head_dim = q
        kv_heads, new_keys = k[1], k[2]
    else:
        raise Unsupported(f"Attention of a rank-{len(q)} query")
    keys = (shape_of(graph, past)[2] if past else 0) + new_keys
    return batch, heads, kv_heads, seq, keys - seq, head_dim


def lower_attention(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """Flash attention on the Cube cores: see the module docstring."""
    batch, heads, kv_heads, seq, kv_len, d = _attention_shapes(node, graph)
    if heads % kv_heads:
        raise Unsupported(f"Attention with {heads} query heads over {kv_heads} kv heads")
    causal = seq > 1 and bool(node.attrs.get("is_causal", 0))
    rows = heads // kv_heads * seq
    q_block = min(rows, _Q_ROWS)
    items: list[tuple[int, int]] = []  # (query rows, keys read) per item
    for start in range(0, rows, q_block):
        m = min(q_block, rows - start)
        # Rows are (token, head) ordered: the block's last token sees the most keys.
        last_token = (start + m - 1) // (heads // kv_heads)
        keys = kv_len + (last_token + 1 if causal else seq)
        items.append((m, keys))
    items = items * (batch * kv_heads)
    # Flash decoding: too few items for the cores, so each item's keys are split among idle
    # cores (the kernels' splitKVNum), every part at least _MIN_SPLIT_KEYS long.
    split = min(ctx.cube_cores // len(items), max(k for _, k in items) // _MIN_SPLIT_KEYS)
    if split > 1:
        items = [(m, -(-keys // split)) for m, keys in items for _ in range(split)]
    spec, ib = ctx.spec, ctx.prec.float_bytes
    longest = max(k for _, k in items)
    tile = tile_cube(
        node.name, len(items), q_block, longest, d, spec=spec, prec=ctx.prec,
        cores=ctx.cube_cores, double_buffer=ctx.double_buffer,
        ub_bytes=None if ctx.split else spec.ub_bytes, force=ctx.force_tile,
    )  # fmt: skip
    panels = sum(
        2 * math.ceil(k / tile.kp) * (2 + 2 * math.ceil(tile.kp / tile.k)) for _, k in items
    )
    check_instructions(node.name, panels, f"attention over {len(items):,} query blocks")
    # The past cache is inputs 4 and 5 (read in place); without one, K and V (1, 2). Roles
    # number the present inputs, so a mask (input 3) shifts the cache's by one.
    has_past = len(node.inputs) > 4 and bool(node.inputs[4])
    k_role, v_role = ("in3", "in4") if has_past else ("in1", "in2")
    if has_past and len(node.inputs) > 3 and node.inputs[3]:
        k_role, v_role = "in4", "in5"
    memo: dict[tuple[tuple[int, int], ...], tuple[Instr, ...]] = {}
    programs, start = [], 0
    if split > 1 or seq == 1:
        # The decode kernel's items, or its parts of them: an even count per core.
        runs = split_even(len(items), ctx.cube_cores)
    else:
        # The prompt kernel's split: a causal block weighs its key blocks when no past comes
        # before the queries (nextTokens = 0); otherwise every block weighs the same.
        weights = [keys for _, keys in items] if causal and not kv_len else [1] * len(items)
        runs = _balanced_runs(weights, ctx.cube_cores)
    for count in runs:
        mine = tuple(items[start : start + count])
        start += count
        prog = memo.get(mine)
        if prog is None:
            parts: list[Instr] = []
            for m, keys in mine:
                # Q is read once per item: its bytes spread over the first product's A panels.
                q_rate = d * ib / keys
                parts += cube_program(
                    [(m, d)], keys, tile, ctx, a_gm_per_elem=q_rate, b_role=k_role
                )
                parts += cube_program([(m, d)], keys, tile, ctx, a_gm_per_elem=0.0, b_role=v_role)
            prog = memo[mine] = tuple(parts)
        programs.append(prog)
    macs = sum(i.macs for p in programs for i in p)
    return Lowered(
        "cube",
        tuple(programs),
        cube_init_flags(tile, ctx.split),
        macs=macs,
        tile=(
            f"flash attention {batch}x{kv_heads} groups, {rows} query rows in blocks of "
            f"{q_block}, up to {longest} keys, tile m={tile.m} k={tile.k} n={tile.n} "
            f"on {len(programs)} cores"
        ),
    )


def _balanced_runs(weights: list[int], cores: int) -> list[int]:
    """Items per core: consecutive runs of ``weights``, a run closed before the item that
    would overshoot the core's cumulative target by more than it falls short of it (the
    prompt kernel's core split, see the module docstring)."""
    if not weights:
        return []
    target = sum(weights) / cores
    runs, done, core = [0], 0, 0
    for w in weights:
        short = int(target * (core + 1)) - done
        if w - short > short and runs[-1] and core < cores - 1:
            runs.append(0)
            core += 1
        runs[-1] += 1
        done += w
    return runs


def _vector_passes(node: Node, graph: Graph, ctx: LowerCtx, passes: int) -> Lowered:
    ins, out = node_in_out(graph, node, ctx.prec)
    return vector_lowering(
        ins, out, ins[0] * passes, ctx, name=node.op_type.lower(), ub_buffers=1.5, op=node.name
    )


def lower_rms_norm(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """Fused RMSNorm: :data:`RMS_NORM_PASSES` Vector passes over its input."""
    return _vector_passes(node, graph, ctx, RMS_NORM_PASSES)


def lower_rotary(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """Fused rotary embedding: :data:`ROPE_PASSES` Vector passes over its input."""
    return _vector_passes(node, graph, ctx, ROPE_PASSES)


ATTENTION_LOWERINGS = {
    "Attention": lower_attention,
    "RMSNormalization": lower_rms_norm,
    "RotaryEmbedding": lower_rotary,
}
"""The fused transformer ops and their lowerings, merged into the lowering registry."""
