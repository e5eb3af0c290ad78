"""The stand-in of ``acl`` and ``atc`` (``fake_acl.py``) is no looser than the real ones.

Each test checks one convention of the real module or tool that the backend's tests rely on
the stand-in to enforce; the source of each rule is named beside it in ``fake_acl.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.backends import fake_acl
from tests.conftest import ort_run

# Through the module, so that a stand-in lacking a rule fails that rule's test, not the import.
FakeAcl, FakeAtc, H2D = fake_acl.FakeAcl, fake_acl.FakeAtc, fake_acl.H2D

REPEAT_INITIALIZE, UNINITIALIZE, INVALID_PARAM = 100002, 100001, 100000


def ready(fake: FakeAcl) -> int:
    """init, set_device and a context; a 16-byte device buffer."""
    assert fake.init() == 0 and fake.rt.set_device(0) == 0
    assert fake.rt.create_context(0)[1] == 0
    ptr, ret = fake.rt.malloc(16, 0)
    assert ret == 0
    return ptr


def matmul_model(shape: list[int], op: str = "MatMul") -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    k = shape[1]
    w = rng.standard_normal((k, 4) if op == "MatMul" else (4, k, 1, 1)).astype(np.float32)
    out = [shape[0], 4] if op == "MatMul" else [shape[0], 4, *shape[2:]]
    graph = helper.make_graph(
        [helper.make_node(op, ["x", "W"], ["y"])],
        op.lower(),
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
        [numpy_helper.from_array(w, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def atc_args(model_path: Path, out: Path, *extra: str, shape: str = "x:2,8") -> list[str]:
    return [
        f"--model={model_path}",
        "--framework=5",
        f"--output={out}",
        "--soc_version=Ascend310P3",
        f"--input_shape={shape}",
        *extra,
        "--log=error",
    ]


def test_bytes_to_ptr_takes_bytes_only_and_points_into_them():
    fake = FakeAcl(run_mode=fake_acl.ACL_HOST)
    dev = ready(fake)
    for not_bytes in (bytearray(16), memoryview(bytes(16)), np.zeros(4, np.float32), "x" * 16):
        with pytest.raises(ValueError, match="needs an byte"):
            fake.util.bytes_to_ptr(not_bytes)
    kept = np.arange(4, dtype=np.float32).tobytes()
    ptr = fake.util.bytes_to_ptr(kept)
    assert fake.rt.memcpy(dev, 16, ptr, 16, H2D) == 0
    # The pointer is into the object: once the caller drops it, the pointer dangles.
    dangling = fake.util.bytes_to_ptr(np.ones(4, np.float32).tobytes())
    assert fake.rt.memcpy(dev, 16, dangling, 16, H2D) == INVALID_PARAM
    assert fake.violations and "no longer holds" in fake.violations[-1]


def test_older_pyacl_has_only_the_numpy_conversions():
    fake = FakeAcl(legacy_util=True)
    assert not hasattr(fake.util, "bytes_to_ptr") and not hasattr(fake.util, "ptr_to_bytes")
    dev = ready(fake)
    with pytest.raises(ValueError, match="needs an ndarray"):
        fake.util.numpy_to_ptr(bytes(16))
    arr = np.arange(4, dtype=np.float32)
    assert fake.rt.memcpy(dev, 16, fake.util.numpy_to_ptr(arr), 16, H2D) == 0
    host, _ = fake.rt.malloc_host(16)
    assert fake.rt.memcpy(host, 16, dev, 16, 2) == 0
    view = fake.util.ptr_to_numpy(host, (4,), np.dtype(np.float32).num)
    np.testing.assert_array_equal(view, arr)
    assert view.base is not None, "an array over the host memory itself, not a copy"
    assert fake.violations == []


def test_init_after_finalize_fails_as_on_older_runtimes_and_repeat_init_is_no_error():
    fake = FakeAcl()
    assert fake.init() == 0
    assert fake.init() == REPEAT_INITIALIZE and fake.violations == []
    assert fake.finalize() == 0 and not fake.initialised
    assert fake.init() == REPEAT_INITIALIZE, "older runtimes: one init per process"
    assert not fake.initialised and fake.rt.set_device(0) == UNINITIALIZE
    assert "acl.init after acl.finalize" in fake.violations[0]
    newest = FakeAcl(init_after_finalize=True)
    assert newest.init() == 0 and newest.finalize() == 0
    assert newest.init() == 0 and newest.initialised and newest.violations == []


def test_the_chip_is_reported_and_an_om_for_another_is_refused(tmp_path):
    model_path = tmp_path / "m.onnx"
    onnx.save(matmul_model([2, 8]), model_path)
    assert FakeAtc()(atc_args(model_path, tmp_path / "m")).returncode == 0
    fake = FakeAcl(soc_name="Ascend910B4")
    assert fake.get_soc_name() == "Ascend910B4"
    ready(fake)
    assert fake.mdl.load_from_file(str(tmp_path / "m.om")) == (0, 100012)
    assert "built for Ascend310P3, this is Ascend910B4" in fake.violations[-1]
    assert FakeAcl(soc_name="Ascend310P3").get_soc_name() == "Ascend310P3"


def test_fake_atc_takes_the_documented_precision_modes(tmp_path):
    model_path = tmp_path / "m.onnx"
    onnx.save(matmul_model([2, 8]), model_path)
    for mode in ("must_keep_origin_dtype", "force_fp16", "force_fp32", "allow_fp32_to_fp16"):
        done = FakeAtc()(atc_args(model_path, tmp_path / mode, f"--precision_mode={mode}"))
        assert done.returncode == 0, done.stderr
        assert json.loads((tmp_path / f"{mode}.om").read_text())["precision_mode"] == mode
    done = FakeAtc()(atc_args(model_path, tmp_path / "bad", "--precision_mode=fp32"))
    assert done.returncode != 0 and "Value [fp32] for --precision_mode" in done.stderr


def test_fake_atc_refuses_must_keep_origin_dtype_for_ops_without_a_float32_kernel(tmp_path):
    model_path = tmp_path / "conv.onnx"
    onnx.save(matmul_model([1, 3, 4, 4], op="Conv"), model_path)
    keep = "--precision_mode=must_keep_origin_dtype"
    done = FakeAtc()(atc_args(model_path, tmp_path / "c", keep, shape="x:1,3,4,4"))
    assert done.returncode != 0 and "E19999: Conv" in done.stderr
    fp16 = FakeAtc()(atc_args(model_path, tmp_path / "c16", shape="x:1,3,4,4"))
    assert fp16.returncode == 0, fp16.stderr


def test_the_ops_without_a_float32_kernel_are_those_the_capability_check_knows():
    data = Path(__file__).parents[2] / "hetnpu" / "devices" / "data" / "cann_onnx_ops.json"
    ops = json.loads(data.read_text())["ops"]
    assert {op for op, e in ops.items() if e.get("keep_fp32") is False} == fake_acl.NO_FP32_KERNEL


def test_fake_atc_limits_nd_to_four_dims_and_offers_ncdhw(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu5",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 4, 4])],
    )
    model_path = tmp_path / "relu5.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), model_path)
    shape = "x:1,2,3,4,4"
    nd = FakeAtc()(atc_args(model_path, tmp_path / "nd", "--input_format=ND", shape=shape))
    assert nd.returncode != 0 and "--input_format=ND admits at most 4 dims" in nd.stderr
    ok = FakeAtc()(atc_args(model_path, tmp_path / "nc", "--input_format=NCDHW", shape=shape))
    assert ok.returncode == 0, ok.stderr
    bad = FakeAtc()(atc_args(model_path, tmp_path / "x", "--input_format=NDHWC", shape=shape))
    assert bad.returncode != 0 and "not one of ONNX's" in bad.stderr


@pytest.mark.parametrize(
    "mode, exact", [("must_keep_origin_dtype", True), ("force_fp32", False), ("force_fp16", False)]
)
def test_the_om_computes_as_its_precision_mode_says(mode, exact):
    model = matmul_model([2, 8])
    x = {"x": np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)}
    got, ref = ort_run(fake_acl.as_compiled(model, mode), x)["y"], ort_run(model, x)["y"]
    assert np.array_equal(got, ref) == exact
    np.testing.assert_allclose(got, ref, rtol=1e-2, atol=1e-2)
    w = numpy_helper.to_array(model.graph.initializer[0])
    half = x["x"].astype(np.float16).astype(np.float32) @ w.astype(np.float16).astype(np.float32)
    if mode == "force_fp32":  # Cube ops: float16 in, float32 out
        np.testing.assert_allclose(got, half, rtol=1e-6, atol=1e-6)
