"""Decoder builders: parameter counts, forms that agree, cache consistency, bad configs."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from hetnpu.errors import ConfigError, HetnpuError
from hetnpu.models import count_params
from hetnpu.models.decoder import (
    DECODER_KEY,
    KNOWN_CONFIGS,
    build_decoder,
    cache_names,
    load_config,
)

from .conftest import tiny_config

# Published parameter counts (model cards / model.num_parameters()).
PUBLISHED = {
    "llama-2-7b": 6.74e9,
    "llama-2-70b": 68.98e9,
    "llama-3-8b": 8.03e9,
    "llama-3-70b": 70.55e9,
    "qwen2-7b": 7.62e9,
    "chatglm3-6b": 6.24e9,
    "mixtral-8x7b": 46.70e9,
}

FAMILIES = {
    "llama": tiny_config(),
    "qwen2": tiny_config(architectures=["Qwen2ForCausalLM"]),
    "qwen3": tiny_config(architectures=["Qwen3ForCausalLM"], head_dim=32),
    "mixtral": tiny_config(
        architectures=["MixtralForCausalLM"], num_local_experts=4, num_experts_per_tok=2
    ),
    "qwen2_moe": tiny_config(
        architectures=["Qwen2MoeForCausalLM"],
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=32,
        shared_expert_intermediate_size=64,
    ),
    "chatglm": {
        "architectures": ["ChatGLMModel"],
        "hidden_size": 64,
        "ffn_hidden_size": 96,
        "kv_channels": 16,
        "num_attention_heads": 4,
        "multi_query_attention": True,
        "multi_query_group_num": 1,
        "num_layers": 2,
        "padded_vocab_size": 97,
        "add_qkv_bias": True,
        "seq_length": 256,
    },
    "tied": tiny_config(tie_word_embeddings=True),
}


def _run(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))


@pytest.mark.parametrize("name", KNOWN_CONFIGS)
def test_shipped_configs_have_the_published_parameter_counts(name):
    config = load_config(name)
    assert config.param_count() == pytest.approx(PUBLISHED[name], rel=5e-3)
    # The graph's initializers are those parameters (shapes only: no weights drawn).
    if name in ("llama-2-7b", "chatglm3-6b"):
        model = build_decoder(name, "decode", kv_len=8, weights="absent")
        assert count_params(model) == config.param_count()


def test_a_70b_model_builds_without_weights_in_little_memory():
    model = build_decoder("llama-2-70b", "prefill", seq=512, weights="absent")
    assert model.ByteSize() < 20e6
    assert dict((p.key, p.value) for p in model.metadata_props)["hetnpu.weights"] == "absent"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fused_and_decomposed_forms_agree_and_decode_continues_prefill(family):
    cfg = FAMILIES[family]
    layers = load_config(cfg).layers
    p, batch = 5, 2
    ids = np.random.default_rng(0).integers(0, 97, (batch, p + 1))
    pos = np.tile(np.arange(p + 1), (batch, 1))
    logits = {}
    for form in ("fused", "decomposed"):
        full = _run(
            build_decoder(cfg, "prefill", batch=batch, seq=p + 1, attention=form),
            {"input_ids": ids, "position_ids": pos},
        )
        pre = _run(
            build_decoder(cfg, "prefill", batch=batch, seq=p, attention=form),
            {"input_ids": ids[:, :p], "position_ids": pos[:, :p]},
        )
        feeds = {"input_ids": ids[:, p:], "position_ids": pos[:, p:]}
        for i in range(layers):
            past_k, past_v, present_k, present_v = cache_names(i)
            feeds[past_k], feeds[past_v] = pre[present_k], pre[present_v]
        step = _run(build_decoder(cfg, "decode", batch=batch, kv_len=p, attention=form), feeds)
        # One decode step after a prompt of P is the prompt of P + 1's last position.
        np.testing.assert_allclose(step["logits"], full["logits"], atol=1e-5)
        np.testing.assert_allclose(step["present.0.key"], full["present.0.key"], atol=1e-5)
        logits[form] = full["logits"]
    np.testing.assert_allclose(logits["fused"], logits["decomposed"], atol=1e-5)
    assert np.abs(logits["fused"]).max() > 0.05  # not a degenerate all-zero network


def test_same_seed_same_bytes():
    a = build_decoder(tiny_config(), "decode", kv_len=4, seed=7)
    b = build_decoder(tiny_config(), "decode", kv_len=4, seed=7)
    assert a.SerializeToString() == b.SerializeToString()


def test_unknown_architecture_is_named():
    with pytest.raises(ConfigError, match="GPT2LMHeadModel"):
        load_config({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"})


def test_missing_key_is_named(tmp_path):
    cfg = tiny_config()
    del cfg["intermediate_size"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"config.json: missing key 'intermediate_size'"):
        load_config(path)


def test_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "hidden_size": 64,\n  oops\n}')
    with pytest.raises(ConfigError, match=r"config.json:3:3: invalid JSON"):
        load_config(tmp_path)


def test_context_beyond_the_positions_is_refused():
    with pytest.raises(HetnpuError, match="4097 tokens exceeds its 4096 positions"):
        build_decoder("llama-2-7b", "decode", kv_len=4096, weights="absent")


def test_heads_not_a_multiple_of_kv_heads_is_refused():
    with pytest.raises(ConfigError, match="not a multiple of the 3 key/value heads"):
        load_config(tiny_config(num_key_value_heads=3))


@pytest.mark.parametrize("family", ["llama", "chatglm", "qwen3"])
def test_a_concatenated_cache_gives_the_same_logits_and_cache(family):
    cfg, p = FAMILIES[family], 4
    ids = np.random.default_rng(1).integers(0, 97, (1, p))
    pos = np.arange(p)[None]
    out = {}
    for kv_cache in ("inplace", "concat", "concat-repeat"):
        pre = _run(
            build_decoder(cfg, "prefill", seq=p - 1, kv_cache=kv_cache),
            {"input_ids": ids[:, :-1], "position_ids": pos[:, :-1]},
        )
        feeds = {"input_ids": ids[:, -1:], "position_ids": pos[:, -1:]}
        for i in range(2):
            past_k, past_v, present_k, present_v = cache_names(i)
            feeds[past_k], feeds[past_v] = pre[present_k], pre[present_v]
        out[kv_cache] = _run(build_decoder(cfg, "decode", kv_len=p - 1, kv_cache=kv_cache), feeds)
    for form in ("concat", "concat-repeat"):
        for name in ("logits", "present.1.value"):
            np.testing.assert_allclose(out[form][name], out["inplace"][name], atol=1e-6)


@pytest.mark.parametrize("family", ["llama", "chatglm"])
def test_a_decomposed_rope_in_a_fused_graph_gives_the_same_logits(family):
    cfg, p = FAMILIES[family], 5
    feeds = {
        "input_ids": np.random.default_rng(2).integers(0, 97, (1, p)),
        "position_ids": np.arange(p)[None],
    }
    out = {}
    for rope in ("fused", "decomposed"):
        model = build_decoder(cfg, "prefill", seq=p, rope=rope)
        ops = {n.op_type for n in model.graph.node}
        assert ("RotaryEmbedding" in ops) == (rope == "fused")
        assert "Attention" in ops and "RMSNormalization" in ops
        out[rope] = _run(model, feeds)
    np.testing.assert_allclose(out["decomposed"]["logits"], out["fused"]["logits"], atol=1e-5)


@pytest.mark.parametrize("kv_cache", ["inplace", "concat-repeat"])
def test_a_causal_mask_given_as_a_tensor_gives_the_same_logits(kv_cache):
    cfg, p = FAMILIES["chatglm"], 6
    feeds = {
        "input_ids": np.random.default_rng(3).integers(0, 97, (2, p)),
        "position_ids": np.tile(np.arange(p), (2, 1)),
    }
    out = {}
    for mask in ("is_causal", "tensor"):
        model = build_decoder(cfg, "prefill", batch=2, seq=p, kv_cache=kv_cache, mask=mask)
        attention = [n for n in model.graph.node if n.op_type == "Attention"]
        given = [len(n.input) > 3 and bool(n.input[3]) for n in attention]
        flagged = [any(a.name == "is_causal" and a.i for a in n.attribute) for n in attention]
        # One way or the other, never both: the tensor form leaves the kernel no causal flag.
        assert given == [mask == "tensor"] * len(attention)
        assert flagged == [mask == "is_causal"] * len(attention)
        record = json.loads(next(p.value for p in model.metadata_props if p.key == DECODER_KEY))
        assert record["mask"] == mask
        out[mask] = _run(model, feeds)
    np.testing.assert_allclose(out["tensor"]["logits"], out["is_causal"]["logits"], atol=1e-5)


def test_an_unknown_mask_form_is_refused():
    with pytest.raises(ConfigError, match="mask 'band'"):
        build_decoder(tiny_config(), mask="band")


def test_an_unknown_rope_form_is_refused():
    with pytest.raises(ConfigError, match="rope 'half'"):
        build_decoder(tiny_config(), rope="half")
    with pytest.raises(ConfigError, match="rope 'fused' needs attention='fused'"):
        build_decoder(tiny_config(), attention="decomposed", rope="fused")


@pytest.mark.parametrize("attention", ["fused", "decomposed"])
def test_repeated_kv_heads_are_copied_only_where_heads_share_them(attention):
    def expands(cfg):
        model = build_decoder(cfg, "decode", kv_len=3, attention=attention,
                              kv_cache="concat-repeat")  # fmt: skip
        return [n for n in model.graph.node if n.op_type == "Expand"]

    # K and V of each of the 2 layers, copied from 2 to 4 heads; none where every head has its own.
    assert len(expands(tiny_config())) == 4
    assert expands(tiny_config(num_key_value_heads=4)) == []


def test_even_moe_keeps_the_parameters_and_runs():
    cfg = dict(FAMILIES["mixtral"], num_local_experts=8)
    for phase, kw in (("prefill", {"seq": 5}), ("decode", {"kv_len": 3})):
        model = build_decoder(cfg, phase, moe="even", **kw)
        assert count_params(model) == load_config(cfg).param_count()
        ids = np.zeros((1, 5 if phase == "prefill" else 1), np.int64)
        feeds = {"input_ids": ids, "position_ids": ids}
        for i in range(2 if phase == "decode" else 0):
            past_k, past_v, _, _ = cache_names(i)
            feeds[past_k] = feeds[past_v] = np.zeros((1, 2, 3, 16), np.float32)
        assert np.isfinite(_run(model, feeds)["logits"]).all()
    # A one-token step routes to k = 2 experts: only their weights are read.
    decode = build_decoder(cfg, "decode", kv_len=3, moe="even")
    stacked = {t.name: list(t.dims) for t in decode.graph.initializer if ".experts." in t.name}
    assert stacked["model.layers.0.mlp.experts.gate_proj.weight"] == [2, 64, 128]
    assert stacked["model.layers.0.mlp.experts.gate_proj.weight_idle"] == [6, 64, 128]
