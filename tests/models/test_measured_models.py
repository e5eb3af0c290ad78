"""The networks of the simulator's calibration table, as measured: counts against published
figures, validity, scale, and the details that make each the measured graph.

Parameters are counted from the initializers (:func:`hetnpu.models.count_params`, BN running
statistics excluded, as ``torch`` counts ``parameters()``); multiply-accumulates by
:mod:`hetnpu.graph.cost` on the loaded graph, as ``benchmarks/info.py`` counts them. torchvision's
model docs list "GFLOPS" per weight set; those are multiply-accumulates (ResNet-50's 4.09 is its
MAC count), and the ``_ops`` field of each ``*_Weights`` meta in torchvision/models/*.py holds the
same figure with three decimals, quoted here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hetnpu import models
from hetnpu.cli import main
from hetnpu.errors import ConfigError
from hetnpu.graph import Graph, load
from hetnpu.graph.cost import node_cost, total_cost
from hetnpu.models import count_params
from tests.conftest import ort_run

TINY_BERT = dict(seq_len=8, num_layers=1, hidden=32, heads=4, intermediate=64, vocab_size=50)


@dataclass(frozen=True)
class Published:
    """A model's published size and work, and where they come from."""

    params: int
    """The exact parameter count the graph must have."""
    gmacs: float
    """Published multiply-accumulates (G) at the builder's default input; 2% tolerance."""
    source: str
    rounded_params: float | None = None
    """A rounded published count (4.2e6, ...) that ``params`` must round to."""


def _crnn_macs() -> int:
    """CRNN(32, 1, 37, 256) at 1x32x100 by hand: no MAC count is published for it.

    Convs: (out channels, in channels, kernel, output H, output W); each BidirectionalLSTM runs
    two one-direction LSTMs of 4 gates x 256 over 26 steps, then a Linear per step.
    """
    convs = [
        (64, 1, 3, 32, 100),
        (128, 64, 3, 16, 50),
        (256, 128, 3, 8, 25),
        (256, 256, 3, 8, 25),
        (512, 256, 3, 4, 26),
        (512, 512, 3, 4, 26),
        (512, 512, 2, 1, 26),
    ]
    conv = sum(co * ci * k * k * h * w for co, ci, k, h, w in convs)
    steps, hidden = 26, 256
    lstm = 2 * steps * 4 * hidden * ((512 + hidden) + (256 + hidden))
    linear = steps * 2 * hidden * (256 + 37)
    return conv + lstm + linear


def _bert_params(layers: int, hidden: int, intermediate: int, vocab: int) -> int:
    """BERT's encoder by formula: embeddings (512 positions, 2 token types) + layers."""
    embeddings = (vocab + 512 + 2) * hidden + 2 * hidden
    attention = 4 * (hidden * hidden + hidden) + 2 * hidden
    ffn = (hidden * intermediate + intermediate) + (intermediate * hidden + hidden) + 2 * hidden
    return embeddings + layers * (attention + ffn)


def _bert_macs(layers: int, seq: int, hidden: int, intermediate: int) -> int:
    """Q, K, V and output projections, the FFN, QK^T and attention x V, per layer."""
    per_layer = 4 * seq * hidden**2 + 2 * seq * hidden * intermediate + 2 * seq**2 * hidden
    return layers * per_layer


QA_HEAD = 768 * 2 + 2  # BertForQuestionAnswering.qa_outputs = Linear(768, 2)
BERT_POOLER = 768 * 768 + 768  # in BertModel's nominal 110M, not in the QA model

PUBLISHED: dict[str, Published] = {
    # torchvision ResNet18_Weights.IMAGENET1K_V1: num_params 11689512, _ops 1.814 (docs 1.81)
    "resnet18": Published(11_689_512, 1.814, "torchvision ResNet18_Weights"),
    # torchvision ResNet101_Weights.IMAGENET1K_V1: num_params 44549160, _ops 7.801
    "resnet101": Published(44_549_160, 7.801, "torchvision ResNet101_Weights"),
    # torchvision ResNeXt50_32X4D_Weights.IMAGENET1K_V1: num_params 25028904, _ops 4.23
    "resnext50_32x4d": Published(25_028_904, 4.23, "torchvision ResNeXt50_32X4D_Weights"),
    # torchvision DenseNet121_Weights.IMAGENET1K_V1: num_params 7978856, _ops 2.834
    "densenet121": Published(7_978_856, 2.834, "torchvision DenseNet121_Weights"),
    # torchvision VGG16_Weights.IMAGENET1K_V1: num_params 138357544, _ops 15.47
    "vgg16": Published(138_357_544, 15.47, "torchvision VGG16_Weights"),
    # torchvision VGG19_Weights.IMAGENET1K_V1: num_params 143667240, _ops 19.632
    "vgg19": Published(143_667_240, 19.632, "torchvision VGG19_Weights"),
    # torchvision AlexNet_Weights.IMAGENET1K_V1: num_params 61100840, _ops 0.714
    "alexnet": Published(61_100_840, 0.714, "torchvision AlexNet_Weights"),
    # torchvision GoogLeNet_Weights.IMAGENET1K_V1: num_params 6624904 (no aux heads), _ops 1.498
    "googlenet": Published(6_624_904, 1.498, "torchvision GoogLeNet_Weights"),
    # torchvision Inception_V3_Weights.IMAGENET1K_V1: num_params 27161264, _ops 5.713 at
    # 299x299. The count includes AuxLogits (conv0 768·128 + BN 2·128, conv1 128·768·25 + BN
    # 2·768, fc 768·1000 + 1000 = 3,326,696), a training-only branch an eval export drops.
    "inception_v3": Published(27_161_264 - 3_326_696, 5.713, "torchvision Inception_V3_Weights"),
    # Howard et al. 2017 (MobileNets): 1.0 MobileNet-224, 569 million mult-adds, 4.2 million
    # parameters, figures megvii-model/ShuffleNet-Series ShuffleNetV1/README.md repeats ("1.0
    # MobileNetV1-224 | 569M | 4.2M"). Exact: the Ascend port's layers (conv_bn, 13 conv_dw, fc).
    "mobilenet_v1": Published(
        4_231_976, 0.569, "MobileNets paper; ShuffleNet-Series README", rounded_params=4.2e6
    ),
    # torchvision ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1: num_params 2278604, _ops 0.145
    "shufflenet_v2_x1_0": Published(2_278_604, 0.145, "torchvision ShuffleNet_V2_X1_0_Weights"),
    # github.com/megvii-model/ShuffleNet-Series, ShuffleNetV1/README.md: "ShuffleNetV1 1.0x
    # (group=3) | 138M FLOPs | 1.9M #Params" (FLOPs there are multiply-adds, as in the paper,
    # which gives 140 MFLOPs for ShuffleNet 1x, g=3). Exact: network.py and blocks.py.
    "shufflenet_v1": Published(
        1_864_728, 0.138, "ShuffleNet-Series README (Megvii)", rounded_params=1.9e6
    ),
    # torchvision SqueezeNet1_1_Weights.IMAGENET1K_V1: num_params 1235496, _ops 0.349
    "squeezenet1_1": Published(1_235_496, 0.349, "torchvision SqueezeNet1_1_Weights"),
    # Shi et al., CRNN (TPAMI 2017): 8.3M parameters. Exact: the convs with bias, the
    # three BNs, four LSTMs (4·256·(in + 256) + 2·4·256 each) and the two Linears. No MAC count
    # is published: the expected figure is the hand count of _crnn_macs.
    "crnn": Published(8_331_301, _crnn_macs() / 1e9, "CRNN paper", rounded_params=8.3e6),
    # Parameters: bubbliiiing/mobilenet-yolov4-pytorch, summary.py: "原版的YOLOv4为 64,363,101"
    # (the original YOLOv4 has 64,363,101), 80 classes; darknet's yolov4.weights holds these and
    # 2 x 33,152 BN running statistics. MACs: AlexeyAB/darknet README, yolov4.cfg at
    # width=608 height=608: 128.5 BFlops, darknet counting 2 FLOPs per multiply-accumulate.
    "yolov4": Published(64_363_101, 128.5 / 2, "darknet README; pytorch-YOLOv4 summaries"),
    # Devlin et al. 2019 (BERT): BERT-base 110M parameters, the nominal figure of BertModel with
    # its pooler. Exact: HF BertForQuestionAnswering = the encoder (no pooler) + qa_outputs. No
    # MAC count is published for seq 128: the expected figure is the formula of _bert_macs plus
    # the head's S·768·2.
    "bert_squad": Published(
        _bert_params(12, 768, 3072, 30522) + QA_HEAD,
        (_bert_macs(12, 128, 768, 3072) + 128 * 768 * 2) / 1e9,
        "BERT paper (110M); formula",
        rounded_params=110e6,
    ),
}

# Sizes at which every model is built with real weights and run: small inputs where the
# definition allows them. VGG and AlexNet export AdaptiveAvgPool2d only at 224x224, and
# MobileNetV1 and ShuffleNet V1 are defined for 224x224 only.
SMALL: dict[str, dict[str, object]] = {
    "resnet18": {"image_size": 64},
    "resnet101": {"image_size": 64},
    "resnext50_32x4d": {"image_size": 64},
    "densenet121": {"image_size": 64},
    "vgg16": {},
    "vgg19": {},
    "alexnet": {},
    "googlenet": {"image_size": 64},
    "inception_v3": {"image_size": 96},
    "mobilenet_v1": {},
    "shufflenet_v2_x1_0": {"image_size": 64},
    "shufflenet_v1": {},
    "squeezenet1_1": {"image_size": 64},
    "crnn": {},
    "yolov4": {"image_size": 64},
    "bert_squad": TINY_BERT,
}


def _shapes_only(name: str, **kwargs: object) -> onnx.ModelProto:
    with models.shapes_only():
        return models.build(name, **kwargs)


def _uncounted_recurrent_macs(g: Graph) -> int:
    """MACs of the LSTM nodes that :mod:`hetnpu.graph.cost` has no formula for.

    Per step and direction an LSTM multiplies its input by W [4h, in] and its state by
    R [4h, h]. Zero once cost.py counts LSTMs itself.
    """
    total = 0
    for node in g:
        if node.op_type != "LSTM" or node_cost(g, node).macs:
            continue
        steps, batch, _ = g.tensors[node.inputs[0]].shape  # type: ignore[misc]
        dirs, gates, fin = g.tensors[node.inputs[1]].shape  # type: ignore[misc]
        hidden = g.tensors[node.inputs[2]].shape[2]  # type: ignore[index]
        total += steps * batch * dirs * gates * (fin + hidden)  # type: ignore[operator]
    return total


def _feeds(model: onnx.ModelProto, batch: int | None = None, seed: int = 1) -> dict:
    """Seeded inputs for every graph input: N(0, 1) floats, valid token ids and masks."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        dims = [d.dim_value or batch or 1 for d in vi.type.tensor_type.shape.dim]
        if vi.type.tensor_type.elem_type == onnx.TensorProto.INT64:
            high = {"input_ids": TINY_BERT["vocab_size"], "token_type_ids": 2}.get(vi.name, 1)
            feeds[vi.name] = rng.integers(0, high, dims, dtype=np.int64)
            if vi.name == "attention_mask":
                feeds[vi.name][:] = 1
        else:
            feeds[vi.name] = rng.standard_normal(dims, dtype=np.float32)
    return feeds


def _probe_activations(model: onnx.ModelProto, skeleton: onnx.ModelProto) -> None:
    """Make every float tensor a node of ``model`` computes (Constants aside) an output.

    Shapes are inferred on ``skeleton``, the same graph built without weights, so that the
    weights are never copied: a VGG's 550 MB would cost more than the run.
    """
    inferred = onnx.shape_inference.infer_shapes(skeleton)
    known = {o.name for o in model.graph.output}
    known |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    for vi in inferred.graph.value_info:
        if vi.name not in known and vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            model.graph.output.append(vi)


# -- published counts -----------------------------------------------------------------------------


def test_every_calibration_model_has_a_published_entry():
    assert set(PUBLISHED) == set(SMALL)
    assert set(PUBLISHED) <= set(models.MODELS)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_the_published_figure(name):
    pub = PUBLISHED[name]
    model = _shapes_only(name)
    assert count_params(model) == pub.params, pub.source
    if pub.rounded_params is not None:
        digits = 1 - math.floor(math.log10(pub.rounded_params))
        if name == "bert_squad":
            # The nominal 110M is BertModel's: the encoder with its pooler, without the head.
            assert pub.params - QA_HEAD + BERT_POOLER == pytest.approx(110e6, rel=0.01)
        else:
            assert round(pub.params, digits) == pub.rounded_params, pub.source


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_macs_match_the_published_figure(name):
    pub = PUBLISHED[name]
    g = load(_shapes_only(name))
    macs = total_cost(g).macs + _uncounted_recurrent_macs(g)
    assert macs / 1e9 == pytest.approx(pub.gmacs, rel=0.02), pub.source


def test_crnn_counts_its_lstms_beside_the_cost_model():
    g = load(_shapes_only("crnn"))
    lstm = _uncounted_recurrent_macs(g)
    # 2 modules x 2 directions x 26 steps x 4 gates x 256 x (input + 256): 68.2M, a tenth of
    # the model; the cost model leaves LSTM uncounted, so the count is added here.
    counted = sum(node_cost(g, n).macs for n in g if n.op_type == "LSTM")
    assert lstm + counted == 2 * 26 * 4 * 256 * ((512 + 256) + (256 + 256))


# -- built with weights: valid, runnable, well scaled -----------------------------------------


@pytest.mark.parametrize("name", sorted(SMALL))
def test_model_builds_runs_and_every_activation_is_finite_and_order_one(name):
    # The builder's own check_model(full_check=True) has passed once this returns.
    model = models.build(name, **SMALL[name])
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    declared = {
        vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in model.graph.output
    }
    _probe_activations(model, _shapes_only(name, **SMALL[name]))
    acts = ort_run(model, _feeds(model))
    for output, dims in declared.items():
        assert list(acts[output].shape) == dims, output
    assert len(acts) > len(declared) + 10  # the probe reached the inner tensors
    for tensor, value in acts.items():
        assert np.isfinite(value).all(), tensor
        assert np.abs(value).max() < 1e3, tensor


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        # The models whose Reshapes, Splits or time-major output handle the batch themselves.
        ("shufflenet_v1", {}),
        ("shufflenet_v2_x1_0", {"image_size": 64}),
        ("mobilenet_v1", {}),
        ("crnn", {"width": 48}),
        ("bert_squad", TINY_BERT),
    ],
)
def test_same_seed_same_bytes_and_dynamic_batch_agrees_with_batch_1(name, kwargs):
    first = models.build(name, seed=7, **kwargs).SerializeToString()
    assert models.build(name, seed=7, **kwargs).SerializeToString() == first
    assert models.build(name, seed=8, **kwargs).SerializeToString() != first
    model = models.build(name, dynamic_batch=True, **kwargs)
    three = _feeds(model, batch=3)
    one = {k: v[:1] for k, v in three.items()}
    out3, out1 = ort_run(model, three), ort_run(model, one)
    batch_axis = 1 if name == "crnn" else 0  # CRNN's output is time-major
    for key, value in out1.items():
        assert out3[key].shape[batch_axis] == 3
        first3 = np.take(out3[key], [0], axis=batch_axis)
        # Kernels block differently by batch: agreement to float32 rounding of the scale.
        np.testing.assert_allclose(first3, value, rtol=1e-4, atol=2e-4 * np.abs(value).max())


@pytest.mark.parametrize(
    ("argv", "name", "shapes"),
    [
        (["shufflenet_v1"], "shufflenet_v1", None),
        (["crnn", "--batch", "4"], "crnn", None),
        (
            ["googlenet", "--image-size", "64", "--dynamic-batch"],
            "googlenet",
            {"input": [2, 3, 64, 64]},
        ),
    ],
)
def test_cli_exports_a_file_that_loads(argv, name, shapes, tmp_path, capsys):
    path = tmp_path / f"{name}.onnx"
    assert main(["models", "export", *argv, "-o", str(path)]) == 0
    assert f"{count_params(_shapes_only(name)):,}" in capsys.readouterr().out
    g = load(path, input_shapes=shapes)
    assert total_cost(g).macs > 0


# -- what makes each the measured graph --------------------------------------------------------


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def _attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    return next(
        (onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name), default
    )


def test_resnets_have_torchvisions_blocks():
    r18, r101, rx = (_shapes_only(n) for n in ("resnet18", "resnet101", "resnext50_32x4d"))
    # ResNet-18: stem, 8 basic blocks of two 3x3 convs, 3 downsample 1x1s.
    assert _ops(r18).count("Conv") == 1 + 16 + 3
    assert _ops(r101).count("Conv") == 1 + 3 * 33 + 4
    grouped = [n for n in rx.graph.node if n.op_type == "Conv" and _attr(n, "group", 1) == 32]
    assert len(grouped) == 16  # the 3x3 of every bottleneck
    dims = {t.name: t.dims[0] for t in rx.graph.initializer}
    widths = {dims[n.input[1]] for n in grouped}
    assert widths == {128, 256, 512, 1024}  # twice ResNet-50's: 32 groups x 4 x 2^stage


def test_inception_nets_are_eval_exports_with_transform_input():
    for name in ("googlenet", "inception_v3"):
        model = _shapes_only(name)
        assert not [t.name for t in model.graph.initializer if "aux" in t.name.lower()]
        gathers = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0] == "input"]
        assert len(gathers) == 3  # transform_input re-normalises the three channels
        eps = {_attr(n, "epsilon") for n in model.graph.node if n.op_type == "BatchNormalization"}
        assert len(eps) == 1 and eps.pop() == pytest.approx(1e-3)
        plain = _shapes_only(name, transform_input=False)
        assert "Gather" not in _ops(plain)
        assert count_params(plain) == count_params(model)
    v3 = _shapes_only("inception_v3")
    kernels = {tuple(_attr(n, "kernel_shape")) for n in v3.graph.node if n.op_type == "Conv"}
    assert {(1, 7), (7, 1), (1, 3), (3, 1)} <= kernels
    with pytest.raises(ConfigError, match="at least 75"):
        models.build("inception_v3", image_size=74)


def test_adaptive_pooling_exports_only_where_torch_can():
    vgg = load(_shapes_only("vgg16", image_size=448))  # a 14x14 map, pooled 2x2 to 7x7
    pool = next(n for n in vgg if n.op_type == "AveragePool")
    assert pool.attrs["kernel_shape"] == [2, 2]
    with pytest.raises(ConfigError, match="vgg16: image_size 256"):
        models.build("vgg16", image_size=256)
    with pytest.raises(ConfigError, match="alexnet"):
        models.build("alexnet", image_size=256)


def test_shufflenets_split_and_shuffle_channels():
    v2 = _shapes_only("shufflenet_v2_x1_0")
    assert _ops(v2).count("Split") == 3 + 7 + 3  # every stride-1 unit
    assert _ops(v2).count("Transpose") == 16  # a channel shuffle per unit
    v1 = _shapes_only("shufflenet_v1")
    assert _ops(v1).count("Transpose") == 16
    convs = [n for n in v1.graph.node if n.op_type == "Conv"]
    pointwise = [n for n in convs if _attr(n, "kernel_shape") == [1, 1]]
    # Megvii's first_group: the very first 1x1 is not grouped; every other 1x1 has 3 groups.
    assert [_attr(n, "group") for n in pointwise] == [1] + [3] * 31
    assert _ops(v1)[-1] == "MatMul"  # Linear(960, 1000, bias=False)


def test_crnn_is_the_modelzoo_graph():
    model = models.build("crnn", batch=2)
    ops = _ops(model)
    assert ops.count("LSTM") == 4 and ops.count("BatchNormalization") == 3
    flips = [n for n in model.graph.node if n.op_type == "Slice"]
    assert len(flips) == 4  # each backward LSTM's input and output are time-flipped
    (inp,), (out,) = model.graph.input, model.graph.output
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [2, 1, 32, 100]
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [26, 2, 37]
    log_probs = ort_run(model, _feeds(model))["log_probs"]
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=2), 1.0, rtol=1e-5)
    with pytest.raises(ConfigError, match="width must be at least 4"):
        models.build("crnn", width=3)


def test_crnn_backward_lstm_reads_the_sequence_reversed():
    """A change at the last step reaches the first step's output only through bw_rnn."""
    model = models.build("crnn", width=48)  # 13 steps
    feeds = _feeds(model)
    base = ort_run(model, feeds)["log_probs"]
    changed = {"input": feeds["input"].copy()}
    changed["input"][..., -4:] += 1.0  # only the last step's receptive field moves
    moved = ort_run(model, changed)["log_probs"]
    assert not np.allclose(moved[0], base[0], atol=1e-6)


def test_yolov4_ends_at_the_three_raw_head_maps():
    model = _shapes_only("yolov4")
    assert [
        (o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in model.graph.output
    ] == [
        ("feature_map_1", [1, 255, 76, 76]),
        ("feature_map_2", [1, 255, 38, 38]),
        ("feature_map_3", [1, 255, 19, 19]),
    ]
    ops = _ops(model)
    # Mish on the 72 backbone convs, LeakyReLU(0.1) on the 35 of the neck and head.
    assert ops.count("Softplus") == ops.count("Tanh") == 72
    assert ops.count("LeakyRelu") == 35
    assert ops.count("Conv") == 72 + 35 + 3
    resizes = [n for n in model.graph.node if n.op_type == "Resize"]
    assert len(resizes) == 2 and all(_attr(n, "mode") == b"nearest" for n in resizes)
    assert [_attr(n, "kernel_shape") for n in model.graph.node if n.op_type == "MaxPool"] == [
        [5, 5],
        [9, 9],
        [13, 13],
    ]
    with pytest.raises(ConfigError, match="multiple of 32"):
        models.build("yolov4", image_size=100)


def test_bert_squad_is_the_encoder_plus_the_qa_head():
    squad = models.build("bert_squad", **TINY_BERT, seed=5)
    encoder = models.build("bert_base", **TINY_BERT, seed=5)
    assert [i.name for i in squad.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.INT64 for i in squad.graph.input)
    assert [o.name for o in squad.graph.output] == ["start_logits", "end_logits"]
    feeds = _feeds(squad)
    feeds["token_type_ids"][:] = 0  # the encoder alone uses type 0 everywhere
    got = ort_run(squad, feeds)
    hidden = ort_run(encoder, {k: feeds[k] for k in ("input_ids", "attention_mask")})
    w = {t.name: numpy_helper.to_array(t) for t in squad.graph.initializer}
    logits = hidden["last_hidden_state"] @ w["qa_outputs.weight"] + w["qa_outputs.bias"]
    np.testing.assert_allclose(got["start_logits"], logits[..., 0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["end_logits"], logits[..., 1], rtol=1e-4, atol=1e-5)
    feeds["token_type_ids"][:, 4:] = 1  # a second segment changes every position's logits
    assert not np.allclose(ort_run(squad, feeds)["start_logits"], got["start_logits"])
