"""The ONNX graph of a decoder-only transformer: one forward pass of the prefill or decode phase.

Layer ``i`` reads the hidden state ``x`` and, when the cache is not empty, its past keys and
values (``past_key_values.{i}.key``/``.value``, [B, kv_heads, L, head_dim]); it writes the
present cache (``present.{i}.key``/``.value``, [B, kv_heads, L + S, head_dim]), the layout
Hugging Face's ONNX exports (optimum) use. The graph computes, per layer::

    h = RMSNorm(x);  q, k, v = h Wq (+bq), h Wk (+bk), h Wv (+bv)
    q, k = RoPE(q, k at position_ids);  k, v = concat(past, new)
    x = x + Attention(q, k, v) Wo
    h = RMSNorm(x);  x = x + (silu(h Wg) * (h Wu)) Wd        (or the MoE of it)

then RMSNorm and the LM head on the last position only: ``logits`` [B, vocab], what a
generation step needs (serving stacks do not compute the prompt's other logits).

Two forms of the same network (the same seed gives the same weights and logits):
``attention="fused"`` uses opset-23 ``RMSNormalization``, ``RotaryEmbedding`` and ``Attention``,
the kernels CANN fuses on the 910B (``RmsNorm``, ``RotaryMul``/``ApplyRotaryPosEmb``,
``PromptFlashAttention``/``IncreFlashAttention``); ``attention="decomposed"`` writes them with
MatMul, Softmax, Pow/ReduceMean, Split/Concat as older exporters do. Grouped-query attention
(``kv_heads < heads``) shares each K/V head among ``heads / kv_heads`` query heads without
copying it: the decomposed form puts the query group in its own axis and broadcasts K and V.

MoE layers come in two forms (:mod:`hetnpu.models.decoder.moe`): ``moe="routed"`` computes
exactly what the router picks, ``moe="even"`` times an even expert load.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from hetnpu.errors import ConfigError
from hetnpu.models._builder import GraphBuilder, check_positive, shapes_only
from hetnpu.models.decoder.assemble import DECODER_KEY, assemble, cache_names
from hetnpu.models.decoder.config import DecoderConfig, load_config
from hetnpu.models.decoder.moe import moe_layer
from hetnpu.models.decoder.rope import rotary_embedding

__all__ = [
    "DECODER_KEY",
    "DTYPES",
    "KV_CACHE_FORMS",
    "OPSET",
    "PHASES",
    "build_decoder",
    "cache_names",
]

OPSET = {"fused": 23, "decomposed": 18}
"""Opset of each form: Attention, RotaryEmbedding and RMSNormalization entered the standard
domain at opset 23; the decomposed form stays within CANN's ONNX parser (opsets <= 18), so ATC
would convert it."""

PHASES = ("prefill", "decode")
DTYPES: dict[str, int] = {
    "float32": TensorProto.FLOAT,
    "float16": TensorProto.FLOAT16,
}
"""Element types of a built model. The NPU's precision mode (fp16, bf16, fp32) is chosen when
it is simulated, whatever the model's dtype, as ATC's ``--precision_mode`` does."""
KV_CACHE_FORMS = ("inplace", "concat", "concat-repeat")
"""How a pass grows and reads the KV cache (``build_decoder``'s ``kv_cache``)."""
MASK_FORMS = ("is_causal", "tensor")
"""How a fused prompt pass says it is causal (``build_decoder``'s ``mask``)."""
INIT_STD = 0.02  # transformers' initializer_range default for these families
_MASKED = -65504.0  # what a masked score adds: float16's lowest finite value


class _Decoder:
    """The builder plus the sizes the layers share."""

    def __init__(
        self, c: DecoderConfig, batch: int, seq: int, kv_len: int, fused: bool, seed: int
    ) -> None:
        self.b = GraphBuilder(seed)
        self.c, self.batch, self.seq, self.kv_len, self.fused = c, batch, seq, kv_len, fused
        self.total = kv_len + seq
        self.rope_tables: tuple[str, str] | None = None
        """cos and sin tables, built by the first rotary embedding (see rope.py)."""
        self._causal: str | None = None
        self.concat_cache = False
        """The cache grows by Concat nodes before the Attention op (see ``kv_cache``)."""
        self.repeat_kv = False
        """K and V are copied to one head per query head before attention (``kv_cache``)."""
        self.fused_rope = fused
        """RoPE as the RotaryEmbedding op, else in basic ops (:mod:`.rope`)."""
        self.mask_tensor = False
        """A fused prompt takes its causal mask as a tensor, not ``is_causal`` (``mask``)."""
        self.even_moe = False
        """MoE layers dispatch tokens evenly instead of by their router (see moe.py)."""

    def shape(self) -> tuple[int, int, int]:
        """(batch, new tokens, past tokens) of the pass."""
        return self.batch, self.seq, self.kv_len

    # -- weights and small layers ----------------------------------------------------------

    def linear(self, x: str, scope: str, prefix: str, fin: int, fout: int, bias: bool) -> str:
        """``nn.Linear`` as exported on a 3-D input: MatMul by W^T [in, out] (+ bias)."""
        b = self.b
        y = b.node("MatMul", [x, b.normal(f"{prefix}.weight", (fin, fout), INIT_STD)], scope)
        if bias:
            y = b.node("Add", [y, b.normal(f"{prefix}.bias", (fout,), INIT_STD)], scope)
        return y

    def rms_norm(self, x: str, scope: str, prefix: str, width: int) -> str:
        b = self.b
        gamma = b.normal(f"{prefix}.weight", (width,), 0.1)
        if not b.shapes_only:
            b.weights[gamma] = b.weights[gamma] + np.float32(1.0)  # around 1, as trained
        if self.fused:
            return b.node("RMSNormalization", [x, gamma], scope, axis=-1, epsilon=self.c.rms_eps)
        axes = b.constant(scope, np.array([-1], np.int64))
        mean = b.node("ReduceMean", [b.node("Mul", [x, x], scope), axes], scope, keepdims=1)
        eps = b.constant(scope, np.array(self.c.rms_eps, np.float32))
        inv = b.node(
            "Reciprocal", [b.node("Sqrt", [b.node("Add", [mean, eps], scope)], scope)], scope
        )
        return b.node("Mul", [b.node("Mul", [x, inv], scope), gamma], scope)

    def reshape(self, x: str, scope: str, dims: list[int]) -> str:
        return self.b.node("Reshape", [x, self.b.constant(scope, np.array(dims, np.int64))], scope)

    # -- attention -------------------------------------------------------------------------

    def split(self, x: str, scope: str, sizes: str, n: int) -> list[str]:
        """The ``n`` outputs of a Split of ``x``'s last axis into ``sizes`` (a constant)."""
        node_out = self.b.node("Split", [x, sizes], scope, axis=-1)
        # Split has n outputs: rename the builder's single output list.
        node = self.b.nodes[-1]
        outs = [f"{node.name}_output_{i}" for i in range(n)]
        del node.output[:]
        node.output.extend(outs)
        assert node_out == outs[0]
        return outs

    def heads_first(self, x: str, scope: str, heads: int) -> str:
        """[B, S, heads * d] → [B, heads, S, d]."""
        y = self.reshape(x, scope, [self.batch, self.seq, heads, self.c.head_dim])
        return self.b.node("Transpose", [y], scope, perm=[0, 2, 1, 3])

    def attention(self, x: str, i: int) -> str:
        c, b = self.c, self.b
        scope, prefix = f"/model/layers.{i}/self_attn", f"model.layers.{i}.self_attn"
        h = self.rms_norm(
            x, f"/model/layers.{i}/input_layernorm", f"model.layers.{i}.input_layernorm", c.hidden
        )
        qw, kvw = c.heads * c.head_dim, c.kv_heads * c.head_dim
        if c.fused_qkv:
            qkv = self.linear(
                h,
                f"{scope}/query_key_value",
                f"{prefix}.query_key_value",
                c.hidden,
                qw + 2 * kvw,
                c.qkv_bias,
            )
            sizes = b.constant(scope, np.array([qw, kvw, kvw], np.int64))
            q, k, v = self.split(qkv, scope, sizes, 3)
        else:
            q = self.linear(h, f"{scope}/q_proj", f"{prefix}.q_proj", c.hidden, qw, c.qkv_bias)
            k = self.linear(h, f"{scope}/k_proj", f"{prefix}.k_proj", c.hidden, kvw, c.qkv_bias)
            v = self.linear(h, f"{scope}/v_proj", f"{prefix}.v_proj", c.hidden, kvw, c.qkv_bias)
        if c.qk_norm:
            q = self._head_norm(q, f"{scope}/q_norm", f"{prefix}.q_norm", c.heads)
            k = self._head_norm(k, f"{scope}/k_norm", f"{prefix}.k_norm", c.kv_heads)
        q = rotary_embedding(self, q, f"{scope}/rotary_q", c.heads)
        k = rotary_embedding(self, k, f"{scope}/rotary_k", c.kv_heads)
        past_k, past_v, present_k, present_v = cache_names(i)
        mask = self._mask(scope)
        if self.fused and not self.concat_cache:
            ins = [q, k, v, mask or ""]
            if self.kv_len:
                ins += [past_k, past_v]
            attrs: dict[str, Any] = {"q_num_heads": c.heads, "kv_num_heads": c.kv_heads}
            if mask is None and self.seq > 1:
                attrs["is_causal"] = 1
            b.nodes.append(
                helper.make_node(
                    "Attention",
                    ins,
                    [f"{scope}/Attention_output_0", present_k, present_v],
                    name=f"{scope}/Attention",
                    **attrs,
                )
            )
            ctx = f"{scope}/Attention_output_0"
        else:
            k4, v4 = self.heads_first(k, scope, c.kv_heads), self.heads_first(v, scope, c.kv_heads)
            if self.kv_len:
                k4 = b.node("Concat", [past_k, k4], scope, axis=2, out=present_k)
                v4 = b.node("Concat", [past_v, v4], scope, axis=2, out=present_v)
            else:
                k4 = b.node("Identity", [k4], scope, out=present_k)
                v4 = b.node("Identity", [v4], scope, out=present_v)
            kv_heads = c.kv_heads
            if self.repeat_kv and c.kv_heads < c.heads:
                k4, v4 = self._repeat(k4, scope), self._repeat(v4, scope)
                kv_heads = c.heads
            q4 = self.heads_first(q, scope, c.heads)
            ctx = (
                self._fused_sdpa(q4, k4, v4, mask, scope)
                if self.fused
                else self._sdpa(q4, k4, v4, mask, scope, kv_heads)
            )
        return b.node(
            "Add",
            [x, self.linear(ctx, f"{scope}/o_proj", f"{prefix}.o_proj", qw, c.hidden, False)],
            f"/model/layers.{i}",
        )

    def _repeat(self, kv: str, scope: str) -> str:
        """[B, kv_heads, T, d] → [B, heads, T, d], each K/V head copied for its query group:
        Hugging Face's ``repeat_kv`` (``expand`` then ``reshape``) and ChatGLM's
        ``expand(...).contiguous()``, which write the copy to memory before attention."""
        c, b = self.c, self.b
        axis2 = b.constant(scope, np.array([2], np.int64))
        dims = [self.batch, c.kv_heads, c.groups, self.total, c.head_dim]
        wide = b.node("Expand", [b.node("Unsqueeze", [kv, axis2], scope),
                                 b.constant(scope, np.array(dims, np.int64))], scope)  # fmt: skip
        return self.reshape(wide, scope, [self.batch, c.heads, self.total, c.head_dim])

    def _fused_sdpa(self, q: str, k: str, v: str, mask: str | None, scope: str) -> str:
        """The Attention op over the whole (concatenated) cache, 4-D [B, heads, S, d]."""
        c, b = self.c, self.b
        attrs: dict[str, Any] = {}
        if mask is None and self.seq > 1:
            attrs["is_causal"] = 1
        ctx = b.node("Attention", [q, k, v] + ([mask] if mask else []), scope, **attrs)
        ctx = b.node("Transpose", [ctx], scope, perm=[0, 2, 1, 3])
        return self.reshape(ctx, scope, [self.batch, self.seq, c.heads * c.head_dim])

    def _head_norm(self, x: str, scope: str, prefix: str, heads: int) -> str:
        y = self.reshape(x, scope, [self.batch, self.seq, heads, self.c.head_dim])
        y = self.rms_norm(y, scope, prefix, self.c.head_dim)
        return self.reshape(y, scope, [self.batch, self.seq, heads * self.c.head_dim])

    def _mask(self, scope: str) -> str | None:
        """The additive causal mask [S, L + S], or None where is_causal or no mask does it:
        a fused prompt without a past (is_causal, unless ``mask="tensor"``) and a one-token
        step (attends to everything)."""
        if self.mask_form() != "tensor":
            return None
        if self._causal is not None:
            return self._causal
        # Built by ops from its two index vectors, so a long prompt's [S, L + S] mask costs
        # the model S + L + S numbers, not their product.
        b, scope = self.b, "/model"
        rows = b.constant(scope, (np.arange(self.seq, dtype=np.int64) + self.kv_len)[:, None])
        cols = b.constant(scope, np.arange(self.total, dtype=np.int64)[None, :])
        fill, zero = (b.constant(scope, np.array(v, np.float32)) for v in (_MASKED, 0.0))
        self._causal = b.node("Where", [b.node("Greater", [cols, rows], scope), fill, zero], scope)
        return self._causal

    def mask_form(self) -> str | None:
        """How the pass as built is causal: no mask for one token, else ``is_causal`` or a
        ``tensor`` (after a past, in the decomposed form, or asked for)."""
        if self.seq == 1:
            return None
        return "tensor" if self.mask_tensor or self.kv_len or not self.fused else "is_causal"

    def _sdpa(self, q: str, k: str, v: str, mask: str | None, scope: str, kv_heads: int) -> str:
        """softmax(q kᵀ / sqrt(d) + mask) v with the query group as an axis of its own:
        q [B, kvh, g, S, d] against k, v [B, kvh, 1, T, d], so no K/V head is copied here."""
        c, b = self.c, self.b
        groups = c.heads // kv_heads
        q5 = self.reshape(q, scope, [self.batch, kv_heads, groups, self.seq, c.head_dim])
        axis2 = b.constant(scope, np.array([2], np.int64))
        k5 = b.node(
            "Transpose", [b.node("Unsqueeze", [k, axis2], scope)], scope, perm=[0, 1, 2, 4, 3]
        )
        v5 = b.node("Unsqueeze", [v, axis2], scope)
        scale = b.constant(scope, np.array(1.0 / np.sqrt(c.head_dim), np.float32))
        scores = b.node("Mul", [b.node("MatMul", [q5, k5], scope), scale], scope)
        if mask is not None:
            scores = b.node("Add", [scores, mask], scope)
        probs = b.node("Softmax", [scores], scope, axis=-1)
        ctx = b.node("MatMul", [probs, v5], scope)
        ctx = self.reshape(ctx, scope, [self.batch, c.heads, self.seq, c.head_dim])
        ctx = b.node("Transpose", [ctx], scope, perm=[0, 2, 1, 3])
        return self.reshape(ctx, scope, [self.batch, self.seq, c.heads * c.head_dim])

    # -- feed-forward ----------------------------------------------------------------------

    def swiglu(self, h: str, scope: str, prefix: str, width: int) -> str:
        c, b = self.c, self.b
        if c.fused_qkv:  # ChatGLM: one dense_h_to_4h, chunked into gate and up
            gu = self.linear(
                h, f"{scope}/dense_h_to_4h", f"{prefix}.dense_h_to_4h", c.hidden, 2 * width, False
            )
            gate, up = self.split(
                gu, scope, b.constant(scope, np.array([width, width], np.int64)), 2
            )
            names = ("dense_4h_to_h",)
        else:
            gate = self.linear(
                h, f"{scope}/gate_proj", f"{prefix}.gate_proj", c.hidden, width, False
            )
            up = self.linear(h, f"{scope}/up_proj", f"{prefix}.up_proj", c.hidden, width, False)
            names = ("down_proj",)
        act = b.node(
            "Mul", [b.node("Mul", [gate, b.node("Sigmoid", [gate], scope)], scope), up], scope
        )
        return self.linear(
            act, f"{scope}/{names[0]}", f"{prefix}.{names[0]}", width, c.hidden, False
        )

    def mlp(self, x: str, i: int) -> str:
        c = self.c
        h = self.rms_norm(
            x,
            f"/model/layers.{i}/post_attention_layernorm",
            f"model.layers.{i}.post_attention_layernorm",
            c.hidden,
        )
        scope, prefix = f"/model/layers.{i}/mlp", f"model.layers.{i}.mlp"
        if c.moe:
            y = moe_layer(self, h, scope, prefix, even=self.even_moe)
        else:
            y = self.swiglu(h, scope, prefix, c.intermediate)
        return self.b.node("Add", [x, y], f"/model/layers.{i}")

    # -- ends ------------------------------------------------------------------------------

    def embed(self) -> str:
        w = self.b.normal("model.embed_tokens.weight", (self.c.vocab, self.c.hidden), 1.0)
        return self.b.node("Gather", [w, "input_ids"], "/model/embed_tokens")

    def head(self, x: str) -> str:
        c, b = self.c, self.b
        x = self.rms_norm(x, "/model/norm", "model.norm", c.hidden)
        last = b.node(
            "Gather",
            [x, b.constant("/lm_head", np.array(self.seq - 1, np.int64))],
            "/lm_head",
            axis=1,
        )
        if c.tie_embeddings:
            return b.node(
                "Gemm", [last, "model.embed_tokens.weight"], "/lm_head", out="logits", transB=1
            )
        w = b.normal("lm_head.weight", (c.hidden, c.vocab), INIT_STD)
        return b.node("MatMul", [last, w], "/lm_head", out="logits")


def build_decoder(
    config: Any,
    phase: str = "prefill",
    *,
    batch: int = 1,
    seq: int | None = None,
    kv_len: int = 0,
    dtype: str = "float32",
    weights: str = "random",
    attention: str = "fused",
    layers: int | None = None,
    moe: str | None = None,
    kv_cache: str = "inplace",
    rope: str | None = None,
    mask: str = "is_causal",
    seed: int = 0,
) -> onnx.ModelProto:
    """One forward pass of a decoder-only transformer as an ONNX model.

    Parameters
    ----------
    config : str, path, dict or DecoderConfig
        Anything :func:`~hetnpu.models.decoder.load_config` takes: a shipped name
        (``"qwen2-7b"``), a ``config.json`` path, a Hugging Face config dict.
    phase : {"prefill", "decode"}
        ``prefill`` runs ``seq`` prompt tokens (default 128); ``decode`` runs one token
        (``seq`` must be 1 or None).
    batch : int
        Sequences in the batch.
    seq : int, optional
        New tokens per sequence in this pass.
    kv_len : int
        Tokens already in the KV cache (the past's length L); 0 for a first prefill. With
        ``kv_len > 0`` the model takes ``past_key_values.{i}.key/value`` [B, kv_heads, L, d].
    dtype : {"float32", "float16"}
        Element type of the weights, activations and cache (random weights are drawn in
        float32 and rounded).
    weights : {"random", "absent"}
        Seeded random weights, or none at all: initializers with dims and type only, marked
        ``hetnpu.weights=absent`` (a 70B model builds in seconds in a few MB).
    attention : {"fused", "decomposed"}
        Opset-23 RMSNormalization/RotaryEmbedding/Attention, or the same maths in basic ops
        at opset 18 (within CANN's ONNX parser).
    layers : int, optional
        Build only the first ``layers`` layers (default: all of ``config``).
    moe : {"routed", "even"}, optional
        Form of MoE layers (:mod:`~hetnpu.models.decoder.moe`): exact routing, or the work of
        an even expert load (for timing). Default: ``even`` without weights, else ``routed``.
    kv_cache : {"inplace", "concat", "concat-repeat"}
        How the fused form grows the cache: ``inplace``, the Attention op takes the past and
        writes the present itself (a kernel that appends the new rows to a preallocated cache,
        as serving stacks do); ``concat``, Concat nodes build the present cache (a copy of the
        whole cache per layer and step, as ``torch.cat`` in Hugging Face's modeling code does)
        and the Attention op reads it; ``concat-repeat``, the same, and then K and V are copied
        to one head per query head before attention (``heads / kv_heads`` times the cache's
        bytes written and read again, as Hugging Face's ``repeat_kv`` and ChatGLM's
        ``expand(...).contiguous()`` do for grouped-query and multi-query models). The
        decomposed form always concatenates (and repeats with ``concat-repeat``).
    rope : {"fused", "decomposed"}, optional
        The rotary embedding's form when it differs from ``attention``'s: a fused graph whose
        RoPE stays in basic ops (Gather, Split, Mul, Sub, Add, Concat), as modeling code that
        replaced attention and RMSNorm by NPU kernels but kept its Python RoPE runs.
    mask : {"is_causal", "tensor"}
        How the fused form's prompt without a past is made causal: the Attention op's
        ``is_causal`` (a kernel that skips the key blocks past the diagonal), or the causal
        mask as its ``attn_mask`` input (a kernel that computes every block and masks it, as
        torchair's ChatGLM3 script's prompt flash attention with ``next_tokens=65535`` does).
        A prompt after a past, and the decomposed form, always take the mask as a tensor.
    seed : int
        Seed of the weights; the same seed gives byte-identical models.

    Returns
    -------
    onnx.ModelProto
        Inputs ``input_ids`` and ``position_ids`` (int64 [B, S]) and the past cache; outputs
        ``logits`` [B, vocab] of the last position and ``present.{i}.key/value``
        [B, kv_heads, L + S, d]. Metadata ``hetnpu.decoder`` records what was built.

    Raises
    ------
    ConfigError
        A bad config (naming the key), phase, size, dtype, weights or attention form.
    """
    c = load_config(config)
    if phase not in PHASES:
        raise ConfigError(f"phase {phase!r}: choose prefill or decode")
    if phase == "decode":
        if seq not in (None, 1):
            raise ConfigError(f"decode runs one token per sequence, got seq={seq}")
        seq = 1
    seq = 128 if seq is None else seq
    check_positive("build_decoder", batch=batch, seq=seq)
    if isinstance(kv_len, bool) or not isinstance(kv_len, int) or kv_len < 0:
        raise ConfigError(f"build_decoder: kv_len must be a non-negative integer, got {kv_len!r}")
    if layers is not None:
        check_positive("build_decoder", layers=layers)
        c = c.with_layers(layers)
    if dtype not in DTYPES:
        raise ConfigError(f"dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if weights not in ("random", "absent"):
        raise ConfigError(f"weights {weights!r}: choose random or absent")
    if attention not in ("fused", "decomposed"):
        raise ConfigError(f"attention {attention!r}: choose fused or decomposed")
    if kv_len + seq > c.max_positions:
        raise ConfigError(
            f"{c.name}: a context of {kv_len + seq} tokens exceeds its {c.max_positions} "
            "positions (max_position_embeddings)"
        )
    if kv_cache not in KV_CACHE_FORMS:
        raise ConfigError(f"kv_cache {kv_cache!r}: choose one of {', '.join(KV_CACHE_FORMS)}")
    rope = rope or attention
    if rope not in ("fused", "decomposed"):
        raise ConfigError(f"rope {rope!r}: choose fused or decomposed")
    if rope == "fused" and attention == "decomposed":
        raise ConfigError(
            "rope 'fused' needs attention='fused' (RotaryEmbedding is an opset-23 op; the "
            "decomposed form is opset 18)"
        )
    if mask not in MASK_FORMS:
        raise ConfigError(f"mask {mask!r}: choose one of {', '.join(MASK_FORMS)}")
    moe = moe or ("even" if weights == "absent" else "routed")
    if moe not in ("routed", "even"):
        raise ConfigError(f"moe {moe!r}: choose routed or even")
    if weights == "absent":
        with shapes_only():
            net = _Decoder(c, batch, seq, kv_len, attention == "fused", seed)
    else:
        net = _Decoder(c, batch, seq, kv_len, attention == "fused", seed)
    net.even_moe = moe == "even"
    net.concat_cache = kv_cache != "inplace"
    net.repeat_kv = kv_cache == "concat-repeat"
    net.fused_rope = rope == "fused"
    net.mask_tensor = mask == "tensor"
    x = net.embed()
    for i in range(c.layers):
        x = net.mlp(net.attention(x, i), i)
    net.head(x)
    record = {
        "config": asdict(c),
        "phase": phase,
        "batch": batch,
        "seq": seq,
        "kv_len": kv_len,
        "attention": attention,
        "rope": rope,
        "mask": net.mask_form(),
        "dtype": dtype,
        "moe": moe if c.moe else None,
        "kv_cache": kv_cache if attention == "fused" or net.repeat_kv else "concat",
    }
    return assemble(net.b, c, record, DTYPES[dtype], OPSET[attention], net.shape())
