"""BERT-base, written as Hugging Face's ``BertModel`` exports to ONNX (no pooler), and with the
question-answering head of ``BertForQuestionAnswering``.

Embeddings (word + position + token type, all Gather) and LayerNormalization, then
``num_layers`` post-LN transformer layers: Q/K/V as MatMul + Add, Reshape/Transpose to heads,
scaled QK^T plus the additive attention mask, Softmax, the context MatMul, the output
projection, residual + LayerNormalization, and an FFN whose GELU is written with Erf.
Weights follow BERT's own initialiser: N(0, 0.02) for embeddings and projections.

The encoder alone (:func:`bert_base`) takes ``input_ids`` and ``attention_mask`` and uses token
type 0 throughout. :func:`bert_squad` is the model the Ascend ModelZoo's
Bert_Uncased_Huggingface exports with ``transformers.onnx --feature=question-answering``
(checkpoint csarron/bert-base-uncased-squad-v1, ``modeling_bert.py`` of transformers v4.20.1):
a third input ``token_type_ids``, no pooler, and ``qa_outputs``, a Linear(hidden, 2) whose two
columns are split into ``start_logits`` and ``end_logits``.

Reference: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", NAACL 2019 (BERT-base: 12 layers, hidden 768, 12 heads, 110M parameters).
"""

from __future__ import annotations

import numpy as np
import onnx

from hetnpu.errors import ConfigError
from hetnpu.models._builder import FLOAT, INT64, GraphBuilder, check_positive, io
from hetnpu.models._layers import split

__all__ = ["bert_base", "bert_squad"]

MAX_POSITIONS = 512  # BERT's max_position_embeddings
TYPE_VOCAB = 2  # BERT's type_vocab_size
INIT_STD = 0.02  # BERT's initializer_range
LN_EPS = 1e-12  # BERT's layer_norm_eps
MASKED = -10000.0  # what a masked position adds to its attention score; fits fp16


class _Bert:
    """The builder plus the constants the layers share."""

    def __init__(self, seed: int, hidden: int, heads: int) -> None:
        self.b = GraphBuilder(seed)
        self.hidden, self.heads = hidden, heads
        self.rng = self.b.rng

    def linear(self, x: str, scope: str, prefix: str, fin: int, fout: int) -> str:
        """``nn.Linear`` as exported on a 3-D input: MatMul by W^T [in, out], then Add bias."""
        b = self.b
        w = b.normal(f"{prefix}.weight", (fin, fout), INIT_STD)
        bias = b.normal(f"{prefix}.bias", (fout,), INIT_STD)
        return b.node("Add", [b.node("MatMul", [x, w], scope), bias], scope)

    def layer_norm(self, x: str, scope: str, prefix: str, out: str | None = None) -> str:
        b = self.b
        gamma = b.weight(f"{prefix}.weight", np.ones(self.hidden, np.float32))
        beta = b.weight(f"{prefix}.bias", np.zeros(self.hidden, np.float32))
        return b.node(
            "LayerNormalization", [x, gamma, beta], scope, out=out, axis=-1, epsilon=LN_EPS
        )

    def split_heads(self, x: str, scope: str, transpose_k: bool = False) -> str:
        """[B, S, H] → [B, heads, S, d], or [B, heads, d, S] for the keys."""
        b = self.b
        shape = b.constant(scope, np.array([0, 0, self.heads, self.hidden // self.heads], np.int64))
        y = b.node("Reshape", [x, shape], scope)
        perm = [0, 2, 3, 1] if transpose_k else [0, 2, 1, 3]
        return b.node("Transpose", [y], scope, perm=perm)

    def attention(self, x: str, mask: str, i: int) -> str:
        b = self.b
        h = self.hidden
        base = f"encoder.layer.{i}.attention"
        scope = f"/encoder/layer.{i}/attention/self"
        q = self.linear(x, f"{scope}/query", f"{base}.self.query", h, h)
        k = self.linear(x, f"{scope}/key", f"{base}.self.key", h, h)
        v = self.linear(x, f"{scope}/value", f"{base}.self.value", h, h)
        q = self.split_heads(q, scope)
        k = self.split_heads(k, scope, transpose_k=True)
        v = self.split_heads(v, scope)
        scores = b.node("MatMul", [q, k], scope)
        scale = b.constant(scope, np.array(np.sqrt(h // self.heads), np.float32))
        scores = b.node("Add", [b.node("Div", [scores, scale], scope), mask], scope)
        probs = b.node("Softmax", [scores], scope, axis=-1)
        ctx = b.node("Transpose", [b.node("MatMul", [probs, v], scope)], scope, perm=[0, 2, 1, 3])
        merged = b.constant(scope, np.array([0, 0, h], np.int64))
        ctx = b.node("Reshape", [ctx, merged], scope)
        out = f"/encoder/layer.{i}/attention/output"
        y = self.linear(ctx, f"{out}/dense", f"{base}.output.dense", h, h)
        y = b.node("Add", [y, x], out)
        return self.layer_norm(y, f"{out}/LayerNorm", f"{base}.output.LayerNorm")

    def feed_forward(self, x: str, i: int, intermediate: int, out_name: str | None) -> str:
        b = self.b
        base = f"encoder.layer.{i}"
        scope = f"/encoder/layer.{i}/intermediate"
        y = self.linear(
            x, f"{scope}/dense", f"{base}.intermediate.dense", self.hidden, intermediate
        )
        # Exact GELU, as torch exports it before opset 20: 0.5 * x * (1 + erf(x / sqrt 2)).
        act = f"{scope}/intermediate_act_fn"
        root2 = b.constant(act, np.array(np.sqrt(2.0), np.float32))
        one = b.constant(act, np.array(1.0, np.float32))
        half = b.constant(act, np.array(0.5, np.float32))
        erf = b.node("Erf", [b.node("Div", [y, root2], act)], act)
        y = b.node("Mul", [b.node("Mul", [y, b.node("Add", [erf, one], act)], act), half], act)
        out = f"/encoder/layer.{i}/output"
        y = self.linear(y, f"{out}/dense", f"{base}.output.dense", intermediate, self.hidden)
        y = b.node("Add", [y, x], out)
        return self.layer_norm(y, f"{out}/LayerNorm", f"{base}.output.LayerNorm", out_name)

    def embeddings(self, seq_len: int, vocab_size: int, token_types: bool) -> str:
        b, h = self.b, self.hidden
        scope = "/embeddings"
        word = b.normal("embeddings.word_embeddings.weight", (vocab_size, h), INIT_STD)
        pos = b.normal("embeddings.position_embeddings.weight", (MAX_POSITIONS, h), INIT_STD)
        kind = b.normal("embeddings.token_type_embeddings.weight", (TYPE_VOCAB, h), INIT_STD)
        # position_ids is a buffer in BertEmbeddings, and so is token_type_ids when the caller
        # passes none: constants here.
        positions = b.constant(scope, np.arange(seq_len, dtype=np.int64)[None, :])
        if token_types:
            types = "token_type_ids"
        else:
            types = b.constant(scope, np.zeros((1, seq_len), np.int64))
        y = b.node("Gather", [word, "input_ids"], f"{scope}/word_embeddings")
        y = b.node(
            "Add", [y, b.node("Gather", [kind, types], f"{scope}/token_type_embeddings")], scope
        )
        y = b.node(
            "Add", [y, b.node("Gather", [pos, positions], f"{scope}/position_embeddings")], scope
        )
        return self.layer_norm(y, f"{scope}/LayerNorm", "embeddings.LayerNorm")

    def qa_head(self, x: str) -> None:
        """``qa_outputs`` (Linear(hidden, 2)), ``logits.split(1, dim=-1)`` and ``squeeze(-1)``:
        writes ``start_logits`` and ``end_logits`` [B, S]."""
        b = self.b
        scope = "/qa_outputs"
        logits = self.linear(x, scope, "qa_outputs", self.hidden, 2)
        start, end = split(b, logits, "", [1, 1], axis=-1)
        last = b.constant("", np.array([-1], np.int64))
        b.node("Squeeze", [start, last], "", out="start_logits")
        b.node("Squeeze", [end, last], "", out="end_logits")

    def extended_mask(self) -> str:
        """attention_mask [B, S] (1 keep, 0 pad) → additive [B, 1, 1, S] (0 or MASKED)."""
        b = self.b
        axes = b.constant("", np.array([1, 2], np.int64))
        m = b.node("Cast", [b.node("Unsqueeze", ["attention_mask", axes], "")], "", to=FLOAT)
        one = b.constant("", np.array(1.0, np.float32))
        masked = b.constant("", np.array(MASKED, np.float32))
        return b.node("Mul", [b.node("Sub", [one, m], ""), masked], "")


def bert_base(
    batch: int = 1,
    seq_len: int = 128,
    seed: int = 0,
    num_layers: int = 12,
    hidden: int = 768,
    heads: int = 12,
    intermediate: int = 3072,
    vocab_size: int = 30522,
    dynamic_batch: bool = False,
    token_type_ids: bool = False,
    qa_head: bool = False,
) -> onnx.ModelProto:
    """Build a BERT encoder (BERT-base by default) with seeded random weights.

    Parameters
    ----------
    batch : int
        Batch size of the inputs.
    seq_len : int
        Sequence length S, at most 512 (the position table's size).
    seed : int
        Seed of the weights; the same seed gives a byte-identical model.
    num_layers, hidden, heads, intermediate, vocab_size : int
        The encoder's shape; ``hidden`` must be a multiple of ``heads``.
    dynamic_batch : bool
        Make dim 0 of the inputs and the output the symbolic ``"batch"``.
    token_type_ids : bool
        Take a third input ``token_type_ids`` (int64 [B, S], 0 or 1) instead of using type 0.
    qa_head : bool
        End with ``BertForQuestionAnswering``'s ``qa_outputs`` instead of the hidden states.

    Returns
    -------
    onnx.ModelProto
        Inputs ``input_ids`` and ``attention_mask`` (and ``token_type_ids``), int64 [B, S];
        output ``last_hidden_state`` (float32 [B, S, hidden]), or with ``qa_head``
        ``start_logits`` and ``end_logits`` (float32 [B, S]).

    Raises
    ------
    ConfigError
        A size is not positive, ``seq_len`` exceeds 512 or ``hidden`` is not a multiple of
        ``heads``.
    """
    check_positive(
        "bert_base",
        batch=batch,
        seq_len=seq_len,
        num_layers=num_layers,
        hidden=hidden,
        heads=heads,
        intermediate=intermediate,
        vocab_size=vocab_size,
    )
    if seq_len > MAX_POSITIONS:
        raise ConfigError(f"bert_base: seq_len {seq_len} exceeds the {MAX_POSITIONS} positions")
    if hidden % heads:
        raise ConfigError(f"bert_base: hidden {hidden} is not a multiple of heads {heads}")
    net = _Bert(seed, hidden, heads)
    x = net.embeddings(seq_len, vocab_size, token_type_ids)
    mask = net.extended_mask()
    for i in range(num_layers):
        x = net.attention(x, mask, i)
        last = i == num_layers - 1 and not qa_head
        x = net.feed_forward(x, i, intermediate, "last_hidden_state" if last else None)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if token_type_ids else [])
    inputs = [io(n, INT64, [batch, seq_len], dynamic_batch) for n in names]
    if not qa_head:
        return net.b.model(
            "bert_base",
            inputs,
            [io("last_hidden_state", FLOAT, [batch, seq_len, hidden], dynamic_batch)],
            f"BERT encoder ({num_layers} layers, hidden {hidden}) with seeded random weights",
        )
    net.qa_head(x)
    return net.b.model(
        "bert_squad",
        inputs,
        [io(n, FLOAT, [batch, seq_len], dynamic_batch) for n in ("start_logits", "end_logits")],
        f"BERT for question answering ({num_layers} layers, hidden {hidden}) with seeded "
        "random weights",
    )


def bert_squad(
    batch: int = 1,
    seq_len: int = 128,
    seed: int = 0,
    num_layers: int = 12,
    hidden: int = 768,
    heads: int = 12,
    intermediate: int = 3072,
    vocab_size: int = 30522,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build ``BertForQuestionAnswering`` (bert-base-uncased by default) with seeded weights.

    The model of the Ascend ModelZoo's Bert_Uncased_Huggingface: inputs ``input_ids``,
    ``attention_mask`` and ``token_type_ids`` (int64 [B, S]), outputs ``start_logits`` and
    ``end_logits`` (float32 [B, S]); :func:`bert_base` with ``token_type_ids`` and
    ``qa_head``. 108,893,186 parameters for BERT-base: the encoder's 108,891,648 (BERT's
    nominal 110M counts the pooler and rounds) and the head's 768 x 2 + 2.

    Parameters
    ----------
    batch, seq_len, seed, num_layers, hidden, heads, intermediate, vocab_size, dynamic_batch
        As for :func:`bert_base`.

    Returns
    -------
    onnx.ModelProto
        An opset-17 model that passes ``onnx.checker.check_model(full_check=True)``.

    Raises
    ------
    ConfigError
        As for :func:`bert_base`.
    """
    return bert_base(
        batch=batch,
        seq_len=seq_len,
        seed=seed,
        num_layers=num_layers,
        hidden=hidden,
        heads=heads,
        intermediate=intermediate,
        vocab_size=vocab_size,
        dynamic_batch=dynamic_batch,
        token_type_ids=True,
        qa_head=True,
    )
