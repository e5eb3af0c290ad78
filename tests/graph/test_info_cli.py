"""`hetnpu info` end to end: figures printed and written, symbolic binding, capability, errors."""

from __future__ import annotations

import json

import onnx
import pytest
from onnx import TensorProto, helper

from hetnpu.cli import main
from hetnpu.graph import load
from hetnpu.graph.cost import total_cost
from hetnpu.models import build


@pytest.fixture(scope="module")
def resnet_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("info") / "resnet50.onnx"
    onnx.save(build("resnet50"), path)
    return path


def test_json_has_the_figures_and_they_agree_with_the_library(resnet_path, tmp_path, capsys):
    out = tmp_path / "info.json"
    assert main(["info", str(resnet_path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    graph = load(resnet_path)
    cost = total_cost(graph)
    assert data["macs"] == cost.macs
    assert data["flops"] == cost.flops
    assert abs(data["macs"] / 4.09e9 - 1) < 0.01  # ResNet-50's published 4.09 GMACs
    # 53 convolutions and one fully connected layer; every node listed once.
    assert data["op_histogram"]["Conv"] == 53
    assert data["op_histogram"]["Gemm"] + data["op_histogram"].get("MatMul", 0) == 1
    assert len(data["node_list"]) == data["nodes"] == len(list(graph))
    assert sum(n["macs"] for n in data["node_list"]) == cost.macs
    # Weights: 25,557,032 trainable parameters, plus BatchNorm's running mean and variance.
    assert 25_557_032 <= data["parameters"] < 25_557_032 + 60_000
    assert data["inputs"][next(iter(data["inputs"]))]["shape"] == [1, 3, 224, 224]
    assert "MACs 4.09 G" in printed


def test_input_shape_binds_a_symbolic_batch(tmp_path, capsys):
    path = tmp_path / "dyn.onnx"
    onnx.save(build("mlp", dynamic_batch=True), path)
    # Unbound, the symbolic batch is an error that says how to bind it.
    assert main(["info", str(path)]) == 2
    assert "--input-shape input=" in capsys.readouterr().err
    six, one = tmp_path / "six.json", tmp_path / "one.json"
    assert main(["info", str(path), "--input-shape", "input=6,784", "--json", str(six)]) == 0
    assert main(["info", str(path), "--input-shape", "input=1,784", "--json", str(one)]) == 0
    data = json.loads(six.read_text())
    assert data["inputs"]["input"]["shape"] == [6, 784]
    assert data["outputs"]["probabilities"]["shape"] == [6, 10]
    # Work scales with the batch exactly: 784*512 + 512*256 + 256*10 MACs per sample.
    per_sample = 784 * 512 + 512 * 256 + 256 * 10
    assert json.loads(one.read_text())["macs"] == per_sample
    assert data["macs"] == 6 * per_sample


def test_devices_report_who_runs_what(tmp_path, capsys):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Loop", ["n", "", "r"], ["y"], name="loop", body=_identity_body()),
    ]
    g = helper.make_graph(
        nodes,
        "ctl",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]),
            helper.make_tensor_value_info("n", TensorProto.INT64, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    path = tmp_path / "loop.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    out = tmp_path / "cap.json"
    assert main(["info", str(path), "--devices", "npu,cpu", "--json", str(out)]) == 0
    cap = json.loads(out.read_text())["capability"]
    assert cap["relu"]["npu"]["supported"] and cap["relu"]["cpu"]["supported"]
    assert not cap["loop"]["npu"]["supported"]
    assert "control flow" in cap["loop"]["npu"]["reason"]
    assert cap["loop"]["cpu"]["supported"]
    assert "loop" in capsys.readouterr().out


def _identity_body() -> onnx.GraphProto:
    return helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["v_in"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [4]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [4]),
        ],
    )


def _bad_models(tmp_path):
    def save(name, nodes, inputs, outputs, domain_opsets=()):
        g = helper.make_graph(nodes, name, inputs, outputs)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), *domain_opsets])
        p = tmp_path / f"{name}.onnx"
        p.write_bytes(m.SerializeToString())
        return p

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    good = save("good", [helper.make_node("Relu", ["x"], ["y"], name="r")], [x], [y])
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[:-7])
    text = tmp_path / "text.onnx"
    text.write_text("not a model at all\n")
    return {
        "missing file": (tmp_path / "nope.onnx", "no such file"),
        "truncated": (truncated, "truncated.onnx"),
        "not onnx": (text, "text.onnx"),
        "unknown domain": (
            save(
                "dom",
                [helper.make_node("Frob", ["x"], ["y"], name="frob", domain="com.acme")],
                [x],
                [y],
                [helper.make_opsetid("com.acme", 1)],
            ),
            "com.acme",
        ),
        "missing input": (
            save("miss", [helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")], [x], [y]),
            "ghost",
        ),
        "cycle": (
            save(
                "cyc",
                [
                    helper.make_node("Add", ["x", "b"], ["a"], name="first"),
                    helper.make_node("Relu", ["a"], ["b"], name="second"),
                    helper.make_node("Identity", ["a"], ["y"], name="out"),
                ],
                [x],
                [y],
            ),
            "cycle",
        ),
        "unbindable shape": (
            save(
                "sym",
                [helper.make_node("Relu", ["x"], ["y"], name="r")],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                [y],
            ),
            "'x'",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "truncated",
        "not onnx",
        "unknown domain",
        "missing input",
        "cycle",
        "unbindable shape",
    ],
)
def test_bad_models_give_one_line_and_exit_2(case, tmp_path, capsys):
    path, named = _bad_models(tmp_path)[case]
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hetnpu: error: ")
    assert err.count("\n") == 1
    assert named in err
    assert "Traceback" not in err


def test_usage_errors_exit_2_without_traceback(capsys):
    assert main(["info", "--no-such-flag"]) == 2
    assert "Traceback" not in capsys.readouterr().err
