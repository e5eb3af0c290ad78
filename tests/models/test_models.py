"""hetnpu.models: the built-in networks are valid, runnable, well scaled, and counted right."""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hetnpu import models
from hetnpu.cli import main
from hetnpu.errors import ConfigError
from hetnpu.models import count_params
from tests.conftest import ort_run

# A BERT small enough to run in milliseconds but with every part of the real one.
TINY_BERT = dict(seq_len=8, num_layers=1, hidden=32, heads=4, intermediate=64, vocab_size=50)


@pytest.fixture(scope="module")
def resnet() -> onnx.ModelProto:
    return models.resnet50()


@pytest.fixture(scope="module")
def mobilenet() -> onnx.ModelProto:
    return models.mobilenetv2()


@pytest.fixture(scope="module")
def bert_small() -> onnx.ModelProto:
    return models.bert_base(seq_len=32, num_layers=2)


def _image(batch: int = 1, size: int = 224, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size), dtype=np.float32)


def _tokens(batch: int, seq: int, vocab: int = 30522, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "input_ids": rng.integers(0, vocab, (batch, seq), dtype=np.int64),
        "attention_mask": np.ones((batch, seq), np.int64),
    }


def _all_activations(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every float tensor a node computes, by running the model with all of them as outputs."""
    inferred = onnx.shape_inference.infer_shapes(model)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    constants = {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    known = {o.name for o in probe.graph.output} | constants
    for vi in inferred.graph.value_info:
        if vi.name not in known and vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            probe.graph.output.append(vi)
    return ort_run(probe, feeds)


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    values = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}
    shapes.update({t.name: list(t.dims) for t in model.graph.initializer})
    return shapes


def _macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of the Conv and Gemm nodes, from their inferred shapes."""
    shapes = _shapes(model)
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            _, c_in_per_group, kh, kw = shapes[node.input[1]]
            total += math.prod(shapes[node.output[0]]) * c_in_per_group * kh * kw
        elif node.op_type == "Gemm":
            m, k = shapes[node.input[0]]
            n = shapes[node.input[1]][0]  # transB=1: weight is [out, in]
            total += m * k * n
    return total


def _bert_params(layers: int, hidden: int, intermediate: int, vocab: int) -> int:
    """BERT's parameters by formula: embeddings (512 positions, 2 token types) + layers."""
    embeddings = (vocab + 512 + 2) * hidden + 2 * hidden
    attention = 4 * (hidden * hidden + hidden) + 2 * hidden
    ffn = (hidden * intermediate + intermediate) + (intermediate * hidden + hidden) + 2 * hidden
    return embeddings + layers * (attention + ffn)


# -- validity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet", "mobilenet", "bert_small"])
def test_models_pass_the_full_onnx_check(name, request):
    model = request.getfixturevalue(name)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert model.graph.initializer, "weights are embedded, not external"


def test_mlp_passes_the_full_check_and_its_probabilities_sum_to_one():
    model = models.mlp(batch=4)
    onnx.checker.check_model(model, full_check=True)
    x = np.random.default_rng(0).standard_normal((4, 784), dtype=np.float32)
    probs = ort_run(model, {"input": x})["probabilities"]
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert [n.op_type for n in model.graph.node] == [
        "Gemm",
        "Relu",
        "Gemm",
        "Relu",
        "Gemm",
        "Softmax",
    ]


# -- parameter counts and work --------------------------------------------------------------------


def test_resnet50_has_torchvisions_parameter_count(resnet):
    assert count_params(resnet) == 25_557_032


def test_mobilenetv2_has_torchvisions_parameter_count(mobilenet):
    assert count_params(mobilenet) == 3_504_872


def test_bert_base_parameters_match_the_formula_and_the_published_110m():
    expected = _bert_params(12, 768, 3072, 30522)
    assert models.param_count("bert_base") == expected
    pooler = 768 * 768 + 768  # BertModel's pooler, which the encoder leaves out
    assert abs(expected + pooler - 110e6) / 110e6 < 0.01


def test_small_bert_and_mlp_counts_match_their_formulas(bert_small):
    assert count_params(bert_small) == _bert_params(2, 768, 3072, 30522)
    widths = [100, 64, 32, 5]
    mlp = models.mlp(in_features=100, hidden=(64, 32), num_classes=5)
    assert count_params(mlp) == sum(a * b + b for a, b in itertools.pairwise(widths))


def test_shape_only_count_equals_the_count_of_the_built_model(mobilenet):
    assert models.param_count("mobilenetv2") == count_params(mobilenet)
    assert models.param_count("bert_base", **TINY_BERT) == count_params(
        models.bert_base(**TINY_BERT)
    )


def test_batch_norm_statistics_are_buffers_not_parameters(resnet):
    all_floats = sum(math.prod(t.dims) for t in resnet.graph.initializer)
    bn_channels = sum(
        math.prod(next(t.dims for t in resnet.graph.initializer if t.name == n.input[1]))
        for n in resnet.graph.node
        if n.op_type == "BatchNormalization"
    )
    assert all_floats - count_params(resnet) == 2 * bn_channels


def test_resnet50_does_about_4_09_gmacs_at_224(resnet):
    assert _macs(resnet) == pytest.approx(4.09e9, rel=0.02)


def test_mobilenetv2_does_about_300_mmacs_at_224(mobilenet):
    assert _macs(mobilenet) == pytest.approx(300e6, rel=0.03)


# -- topology -------------------------------------------------------------------------------------


def test_resnet50_is_v1_5_with_exporter_style_names(resnet):
    nodes = {n.name: n for n in resnet.graph.node}
    ops = [n.op_type for n in resnet.graph.node]
    assert (ops.count("Conv"), ops.count("BatchNormalization"), ops.count("Relu")) == (53, 53, 49)
    assert all(len(n.input) == 2 for n in resnet.graph.node if n.op_type == "Conv"), "no conv bias"

    def strides(name: str) -> list[int]:
        attr = next(a for a in nodes[name].attribute if a.name == "strides")
        return list(attr.ints)

    # v1.5 puts the stride on the 3x3 conv, not on the first 1x1.
    assert strides("/layer2/layer2.0/conv1/Conv") == [1, 1]
    assert strides("/layer2/layer2.0/conv2/Conv") == [2, 2]
    assert strides("/layer2/layer2.0/downsample/downsample.0/Conv") == [2, 2]
    assert "/layer4/layer4.2/relu_2/Relu" in nodes
    assert [n for n in ops if n in ("MaxPool", "GlobalAveragePool", "Flatten", "Gemm")] == [
        "MaxPool",
        "GlobalAveragePool",
        "Flatten",
        "Gemm",
    ]
    assert {i.name for i in resnet.graph.initializer} >= {
        "conv1.weight",
        "layer1.0.bn1.running_var",
    }


def test_mobilenetv2_has_depthwise_convs_relu6_and_residuals(mobilenet):
    shapes = _shapes(mobilenet)
    depthwise = 0
    for node in mobilenet.graph.node:
        if node.op_type == "Conv":
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            if group > 1:
                assert group == shapes[node.input[0]][1] == shapes[node.input[1]][0]
                depthwise += 1
    ops = [n.op_type for n in mobilenet.graph.node]
    assert depthwise == 17
    assert ops.count("Clip") == 35  # stem, 16 expansions, 17 depthwise, last 1x1
    assert ops.count("Add") == 10
    clip_bounds = {
        tuple(
            float(numpy_helper.to_array(c.attribute[0].t))
            for c in mobilenet.graph.node
            if c.output[0] in n.input[1:]
        )
        for n in mobilenet.graph.node
        if n.op_type == "Clip"
    }
    assert clip_bounds == {(0.0, 6.0)}


def test_bert_has_the_encoder_ops():
    model = models.bert_base(**TINY_BERT, seed=3)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("LayerNormalization") == 3 and ops.count("Erf") == 1
    assert ops.count("Softmax") == 1 and ops.count("Gather") == 3
    (out,) = model.graph.output
    assert out.name == "last_hidden_state"
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [1, 8, 32]


def test_bert_matches_a_numpy_reference():
    """The graph computes BERT: embeddings, heads, mask, Erf GELU, post-LN residuals."""
    cfg = {**TINY_BERT, "num_layers": 2, "seq_len": 6}
    model = models.bert_base(batch=2, seed=4, **cfg)
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    feeds = _tokens(2, 6, vocab=cfg["vocab_size"], seed=5)
    feeds["attention_mask"][1, 4:] = 0
    got = ort_run(model, feeds)["last_hidden_state"]

    def ln(x, p):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * w[f"{p}.weight"] + w[f"{p}.bias"]

    def lin(x, p):
        return x @ w[f"{p}.weight"] + w[f"{p}.bias"]

    erf = np.vectorize(math.erf)
    heads, d = cfg["heads"], cfg["hidden"] // cfg["heads"]
    ids, seq = feeds["input_ids"], np.arange(6)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][seq]
    )
    x = ln(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    bias = (1.0 - feeds["attention_mask"][:, None, None, :]) * -10000.0
    for i in range(cfg["num_layers"]):
        p = f"encoder.layer.{i}"

        def split(t):
            return t.reshape(2, 6, heads, d).transpose(0, 2, 1, 3)

        q, k, v = (split(lin(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
        a = np.exp(s - s.max(-1, keepdims=True))
        ctx = (a / a.sum(-1, keepdims=True) @ v).transpose(0, 2, 1, 3).reshape(2, 6, -1)
        x = ln(lin(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        h = lin(x, f"{p}.intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / np.sqrt(2.0)))
        x = ln(lin(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
    np.testing.assert_allclose(got, x, rtol=1e-4, atol=1e-4)


def test_bert_masked_tokens_do_not_affect_the_others():
    model = models.bert_base(**TINY_BERT)
    feeds = _tokens(1, 8, vocab=50)
    feeds["attention_mask"][0, 5:] = 0
    base = ort_run(model, feeds)["last_hidden_state"]
    changed = {**feeds, "input_ids": feeds["input_ids"].copy()}
    changed["input_ids"][0, 5:] = (changed["input_ids"][0, 5:] + 1) % 50
    np.testing.assert_allclose(
        ort_run(model, changed)["last_hidden_state"][0, :5], base[0, :5], atol=1e-6
    )
    unmasked = {k: (np.ones_like(v) if k == "attention_mask" else v) for k, v in changed.items()}
    assert not np.allclose(
        ort_run(model, unmasked)["last_hidden_state"][0, :5], base[0, :5], atol=1e-3
    )


# -- scale of weights and activations -------------------------------------------------------------


def test_conv_and_gemm_weights_are_kaiming_normal(resnet):
    for t in resnet.graph.initializer:
        if t.name.endswith(".weight") and len(t.dims) in (2, 4) and math.prod(t.dims) > 100_000:
            fan_in = math.prod(t.dims[1:])
            std = float(numpy_helper.to_array(t).std())
            assert std == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.02), t.name
    gammas = [
        numpy_helper.to_array(t) for t in resnet.graph.initializer if t.name.endswith("bn1.weight")
    ]
    assert abs(np.concatenate(gammas).mean() - 1.0) < 0.02


@pytest.mark.parametrize(
    ("name", "feeds"),
    [
        ("resnet", {"input": _image()}),
        ("mobilenet", {"input": _image()}),
        ("bert_small", _tokens(1, 32)),
    ],
)
def test_every_activation_is_finite_and_order_one(name, feeds, request):
    model = request.getfixturevalue(name)
    acts = _all_activations(model, feeds)
    assert len(acts) > 50
    for tensor, value in acts.items():
        assert np.isfinite(value).all(), tensor
        assert np.abs(value).max() < 1e3, tensor
    # Normalised layers come out at the scale of their gain (gamma ~ 1, or the builders' small
    # residual gain on the last BN of a residual branch), not merely below the bound.
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    ratios, gains = [], set()
    for n in model.graph.node:
        if n.op_type in ("BatchNormalization", "LayerNormalization"):
            gain = float(np.mean(np.abs(inits[n.input[1]])))
            gains.add(round(gain, 1))
            rms = float(np.sqrt(np.mean(acts[n.output[0]].astype(np.float64) ** 2)))
            ratios.append(rms / gain)
    assert min(ratios) > 0.5 and max(ratios) < 2.0, (min(ratios), max(ratios))
    if name in ("resnet", "mobilenet"):
        from hetnpu.models._builder import RESIDUAL_GAIN

        assert gains == {1.0, RESIDUAL_GAIN}


# -- determinism and batch ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("mlp", {}),
        ("mobilenetv2", {"image_size": 96}),
        ("resnet50", {"image_size": 64}),
        ("bert_base", TINY_BERT),
    ],
)
def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(name, kwargs):
    first = models.build(name, seed=7, **kwargs).SerializeToString()
    assert models.build(name, seed=7, **kwargs).SerializeToString() == first
    assert models.build(name, seed=8, **kwargs).SerializeToString() != first


@pytest.mark.parametrize(
    ("name", "kwargs", "feeds"),
    [
        (
            "mlp",
            {},
            lambda b: {
                "input": np.random.default_rng(2).standard_normal((b, 784), dtype=np.float32)
            },
        ),
        ("resnet50", {"image_size": 64}, lambda b: {"input": _image(b, 64)}),
        ("mobilenetv2", {"image_size": 64}, lambda b: {"input": _image(b, 64)}),
        ("bert_base", TINY_BERT, lambda b: _tokens(b, 8, vocab=50)),
    ],
)
def test_dynamic_batch_runs_at_batch_1_and_3(name, kwargs, feeds):
    model = models.build(name, dynamic_batch=True, **kwargs)
    for vi in [*model.graph.input, *model.graph.output]:
        assert vi.type.tensor_type.shape.dim[0].dim_param == "batch", vi.name
    three = feeds(3)
    one = {k: v[:1] for k, v in three.items()}
    (out3,) = ort_run(model, three).values()
    (out1,) = ort_run(model, one).values()
    assert out3.shape[0] == 3 and out1.shape[0] == 1
    np.testing.assert_allclose(out3[:1], out1, rtol=1e-4, atol=1e-4)


def test_static_batch_is_fixed_in_every_input_and_output():
    model = models.bert_base(batch=2, **TINY_BERT)
    for vi in [*model.graph.input, *model.graph.output]:
        assert vi.type.tensor_type.shape.dim[0].dim_value == 2, vi.name


# -- registry -------------------------------------------------------------------------------------


def test_registry_lists_every_model():
    # The four originals, and the networks of the simulator's calibration table
    # (tests/models/test_measured_models.py checks those against their published figures).
    assert set(models.MODELS) == {
        *("resnet50", "mobilenetv2", "bert_base", "mlp"),
        *("resnet18", "resnet101", "resnext50_32x4d", "densenet121", "vgg16", "vgg19"),
        *("alexnet", "googlenet", "inception_v3", "mobilenet_v1", "shufflenet_v2_x1_0"),
        *("shufflenet_v1", "squeezenet1_1", "crnn", "yolov4", "bert_squad"),
    }
    assert set(models.DESCRIPTIONS) == set(models.MODELS)


def test_unknown_model_is_a_config_error_listing_the_known_ones():
    known = ", ".join(sorted(models.MODELS))
    assert known.startswith("alexnet, bert_base, bert_squad, crnn")
    with pytest.raises(ConfigError, match=rf"'vgg13'.*{known}"):
        models.build("vgg13")


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("resnet50", {"seq_len": 16}, "seq_len"),
        ("mlp", {"batch": 0}, "batch"),
        ("bert_base", {"seq_len": 513}, "seq_len 513"),
        ("bert_base", {"hidden": 30, "heads": 4}, "heads"),
    ],
)
def test_bad_options_are_config_errors_naming_the_option(name, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        models.build(name, **kwargs)


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_list_prints_one_line_per_model(capsys):
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(models.MODELS)
    by_name = {line.split()[0]: line for line in lines}
    assert "25,557,032" in by_name["resnet50"] and "3,504,872" in by_name["mobilenetv2"]
    assert f"{_bert_params(12, 768, 3072, 30522):,}" in by_name["bert_base"]


def test_cli_export_writes_the_model_the_builder_makes(tmp_path, capsys):
    path = tmp_path / "out" / "mlp.onnx"
    assert main(["models", "export", "mlp", "-o", str(path), "--batch", "2", "--seed", "5"]) == 0
    assert path.read_bytes() == models.mlp(batch=2, seed=5).SerializeToString()
    loaded = onnx.load(path)
    onnx.checker.check_model(loaded, full_check=True)
    (line,) = capsys.readouterr().out.strip().splitlines()
    assert str(path) in line and "535,818" in line
    assert [p.name for p in path.parent.iterdir()] == ["mlp.onnx"], "no temporary file left"


def test_cli_export_applies_image_size_and_dynamic_batch(tmp_path):
    path = tmp_path / "m.onnx"
    assert (
        main(
            [
                "models",
                "export",
                "mobilenetv2",
                "-o",
                str(path),
                "--image-size",
                "96",
                "--dynamic-batch",
            ]
        )
        == 0
    )
    (inp,) = onnx.load(path).graph.input
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 96, 96]


def test_cli_export_applies_seq_len(tmp_path, monkeypatch):
    # A tiny BERT under the registry's name keeps the test fast; the option handling is the same.
    monkeypatch.setitem(
        models.MODELS, "bert_base", functools.partial(models.bert_base, num_layers=1, vocab_size=50)
    )
    path = tmp_path / "b.onnx"
    assert main(["models", "export", "bert_base", "-o", str(path), "--seq-len", "16"]) == 0
    (out,) = onnx.load(path).graph.output
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [1, 16, 768]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["models", "export", "nope"], "unknown model 'nope'; known models: alexnet, bert_base"),
        (
            ["models", "export", "resnet50", "--seq-len", "16"],
            "--seq-len does not apply to model 'resnet50'",
        ),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    path = tmp_path / "x.onnx"
    assert main([*argv, "-o", str(path)]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert message in line
    assert not path.exists()
