"""The Ascend backend against the conventions of AscendCL, pyacl and ATC that issue 19 found it
getting wrong: the ATC precision mode of an "fp32" stage, the SoC an .om is built for, older
pyacl without ``bytes_to_ptr``, ``acl.init``/``acl.finalize`` once per process, and the input
format of 5-D inputs. The stand-in (``fake_acl.py``) enforces each convention, naming its source.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu import models
from hetnpu.backends import acl_errors
from hetnpu.backends.acl_errors import AclError
from hetnpu.backends.ascend import AscendBackend
from hetnpu.backends.base import CompileOptions
from hetnpu.errors import BackendUnavailableError, ConfigError, ModelError
from tests.backends.fake_acl import FakeAcl, FakeAtc, documented_sequence
from tests.backends.test_ascend import assert_clean, assert_exits_clean, two_io_feeds, two_io_model
from tests.conftest import ort_run


@pytest.fixture
def atc() -> FakeAtc:
    return FakeAtc()


@pytest.fixture
def fp32(tmp_path: Path) -> CompileOptions:
    return CompileOptions(cache_dir=str(tmp_path / "om"), precision="fp32")


@pytest.fixture
def fp16(tmp_path: Path) -> CompileOptions:
    return CompileOptions(cache_dir=str(tmp_path / "om"), precision="fp16")


def single_op_model(
    op: str, shapes: dict[str, list[int]], out: list[int], **attrs: object
) -> onnx.ModelProto:
    """One ``op`` over float32 inputs ``shapes`` (name -> dims) giving ``y``; Conv gets a 1x1
    weight ``W`` as an initializer."""
    inputs = list(shapes)
    inits = []
    if op == "Conv":
        channels = shapes[inputs[0]][1]
        w = np.linspace(-1, 1, out[1] * channels, dtype=np.float32).reshape(out[1], channels, 1, 1)
        inits.append(numpy_helper.from_array(w, "W"))
        inputs.append("W")
    graph = helper.make_graph(
        [helper.make_node(op, inputs, ["y"], **attrs)],
        op.lower(),
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in shapes.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def feeds_for(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    return {
        v.name: rng.standard_normal([d.dim_value for d in v.type.tensor_type.shape.dim]).astype(
            np.float32
        )
        for v in model.graph.input
        if v.name not in inits
    }


# -- 1. fp32 is fp32 ----------------------------------------------------------------------------
def test_an_fp32_stage_keeps_float32_through_the_cube_ops(atc, fp32):
    """force_fp32 would feed the Gemms float16 (it is cube_fp16in_fp32out); must_keep_origin_dtype
    keeps the model's float32, so the stage matches onnxruntime bit for bit."""
    fake = FakeAcl()
    model = models.build("mlp", batch=3)
    x = np.random.default_rng(0).standard_normal((3, 784)).astype(np.float32)
    with AscendBackend(acl_module=fake, atc=atc).compile(model, fp32) as exe:
        out = exe.run({"input": x})["probabilities"]
    np.testing.assert_array_equal(out, ort_run(model, {"input": x})["probabilities"])
    assert "--precision_mode=must_keep_origin_dtype" in atc.calls[0]
    assert_exits_clean(fake)


def test_an_fp16_stage_asks_atc_for_float16_and_gets_it(atc, fp16):
    fake = FakeAcl()
    model = models.build("mlp", batch=3)
    x = np.random.default_rng(0).standard_normal((3, 784)).astype(np.float32)
    with AscendBackend(acl_module=fake, atc=atc).compile(model, fp16) as exe:
        out = exe.run({"input": x})["probabilities"]
    assert "--precision_mode=force_fp16" in atc.calls[0], "not left to the installed default"
    ref = ort_run(model, {"input": x})["probabilities"]
    assert out.dtype == np.float32 and not np.array_equal(out, ref), "computed in float16"
    np.testing.assert_allclose(out, ref, rtol=2e-2, atol=1e-3)
    assert_clean(fake)


def test_an_fp32_stage_with_an_op_that_has_no_fp32_kernel_fails_in_atc(atc, fp32, fp16):
    """Conv has no float32 kernel under must_keep_origin_dtype (its CANN page), which is why the
    capability check keeps it off the NPU at precision fp32; ATC fails rather than drop to fp16."""
    model = single_op_model("Conv", {"x": [1, 3, 4, 4]}, [1, 2, 4, 4])
    with pytest.raises(BackendUnavailableError, match=r"E19999: Conv.*must_keep_origin_dtype"):
        AscendBackend(acl_module=FakeAcl(), atc=atc).compile(model, fp32)
    fake = FakeAcl()
    with AscendBackend(acl_module=fake, atc=atc).compile(model, fp16) as exe:
        got = exe.run(feeds_for(model))["y"]
    np.testing.assert_allclose(got, ort_run(model, feeds_for(model))["y"], rtol=1e-2, atol=1e-2)
    assert_clean(fake)


def test_int8_is_refused_saying_atc_does_not_quantise(atc, tmp_path):
    int8 = CompileOptions(cache_dir=str(tmp_path / "om"), precision="int8")
    fake = FakeAcl()
    with pytest.raises(ConfigError, match=r"'int8'.*does not quantise.*AMCT.*fp16, fp32"):
        AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), int8)
    assert atc.calls == [] and fake.calls == []


# -- 2. the SoC version is the chip's -----------------------------------------------------------
def test_the_soc_version_defaults_to_the_chip_acl_reports(atc, fp32):
    fake = FakeAcl(soc_name="Ascend910B4")
    with AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), fp32) as exe:
        out = exe.run(two_io_feeds())
    assert "--soc_version=Ascend910B4" in atc.calls[0]
    assert fake.names()[:2] == ["init", "get_soc_name"], "asked after acl.init, before ATC"
    np.testing.assert_array_equal(out["y"], ort_run(two_io_model(), two_io_feeds())["y"])
    assert_exits_clean(fake)


def test_a_soc_version_that_is_not_the_chip_is_a_config_error(atc, fp32):
    fake = FakeAcl(soc_name="Ascend310P3")
    backend = AscendBackend(acl_module=fake, atc=atc, soc_version="Ascend910A")
    with pytest.raises(ConfigError, match=r"'Ascend910A'.*reports the chip as 'Ascend310P3'"):
        backend.compile(two_io_model(), fp32)
    assert atc.calls == [], "no .om is built for a chip it cannot run on"
    AscendBackend(acl_module=fake, atc=atc, soc_version="Ascend310P3").compile(
        two_io_model(), fp32
    ).close()
    assert "--soc_version=Ascend310P3" in atc.calls[0]
    assert_clean(fake)


def test_the_expected_soc_version_can_come_from_a_chip_preset(atc, fp32):
    fake = FakeAcl(soc_name="Ascend310P3")
    AscendBackend(acl_module=fake, atc=atc, chip="ascend310p").compile(two_io_model(), fp32).close()
    assert "--soc_version=Ascend310P3" in atc.calls[0]
    wrong = AscendBackend(acl_module=fake, atc=atc, chip="ascend910")
    with pytest.raises(ConfigError, match=r"chip preset 'ascend910' is 'Ascend910A'.*Ascend310P3"):
        wrong.compile(two_io_model(), fp32)
    untouched = FakeAcl(soc_name="Ascend310P3")
    both = AscendBackend(acl_module=untouched, atc=atc, chip="ascend310p", soc_version="Ascend910A")
    with pytest.raises(ConfigError, match=r"'Ascend910A' disagrees with the chip preset"):
        both.compile(two_io_model(), fp32)
    assert untouched.calls == [], "a contradiction needs no device to be refused"
    assert len(atc.calls) == 1
    assert_clean(fake)


# -- 3. older pyacl -----------------------------------------------------------------------------
@pytest.mark.parametrize("execute_async", [True, False])
def test_older_pyacl_without_bytes_to_ptr_falls_back_as_the_samples_do(atc, fp32, execute_async):
    fake = FakeAcl(legacy_util=True)
    backend = AscendBackend(acl_module=fake, atc=atc, execute_async=execute_async)
    assert backend.available()
    with backend.compile(two_io_model(), fp32) as exe:
        outs = [exe.run(two_io_feeds(seed)) for seed in (0, 1)]
    for seed, out in enumerate(outs):
        ref = ort_run(two_io_model(), two_io_feeds(seed))
        for name in ("y", "idx"):
            np.testing.assert_array_equal(out[name], ref[name])
    load, run, release = documented_sequence(2, 2, execute_async, legacy_util=True)
    assert fake.names() == load + run + run + release
    assert_exits_clean(fake)


def test_pyacl_without_any_host_memory_calls_is_unavailable(atc, fp32):
    fake = FakeAcl()
    fake.util = SimpleNamespace(start_thread=None)  # neither pair of conversions
    backend = AscendBackend(acl_module=fake, atc=atc)
    status = backend.available()
    assert not status and "bytes_to_ptr" in status.reason and "numpy_to_ptr" in status.reason
    with pytest.raises(BackendUnavailableError, match=r"acl.util.bytes_to_ptr.*numpy_to_ptr"):
        backend.compile(two_io_model(), fp32)
    assert fake.calls == []


# -- 4. acl.init once per process ---------------------------------------------------------------
def test_acl_stays_initialised_from_model_to_model(atc, fp32):
    """Older runtimes initialise once per process: a finalize when the last model closed made
    the next compile fail. AscendCL now stays initialised until the exit hook finalises it."""
    fake = FakeAcl()  # refuses init after finalize, as older runtimes do
    backend = AscendBackend(acl_module=fake, atc=atc)
    backend.compile(two_io_model(), fp32).close()
    with backend.compile(two_io_model(), fp32) as exe:
        exe.run(two_io_feeds())
    backend.compile(models.build("mlp", batch=1), fp32).close()
    assert fake.names().count("init") == 1
    assert_exits_clean(fake)


def test_the_exit_hook_finalises_acl_once_the_process_ends(tmp_path):
    """In a fresh interpreter: compile and close twice, then exit. Nothing finalises before exit;
    hetnpu's atexit hook does, after which the stand-in has nothing alive."""
    script = textwrap.dedent(
        """
        import atexit, json, sys
        from tests.backends.fake_acl import FakeAcl, FakeAtc
        fake, seen = FakeAcl(), {}

        def report():  # registered first, so it runs after hetnpu's hook (atexit is LIFO)
            seen.update(at_exit=fake.names()[-1], initialised=fake.initialised,
                        leaks=fake.leaks(), violations=fake.violations)
            print(json.dumps(seen))

        atexit.register(report)
        from hetnpu.backends.ascend import AscendBackend
        from hetnpu.backends.base import CompileOptions
        from tests.backends.test_ascend import two_io_feeds, two_io_model
        backend = AscendBackend(acl_module=fake, atc=FakeAtc())
        opts = CompileOptions(cache_dir=sys.argv[1], precision="fp32")
        for _ in range(2):
            with backend.compile(two_io_model(), opts) as exe:
                exe.run(two_io_feeds())
        seen["finalized_before_exit"] = "finalize" in fake.names()
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "om")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "finalized_before_exit": False,
        "at_exit": "finalize",
        "initialised": False,
        "leaks": [],
        "violations": [],
    }


def test_an_application_that_initialised_acl_is_left_to_finalise_it(atc, fp32):
    fake = FakeAcl()
    assert fake.init() == 0
    backend = AscendBackend(acl_module=fake, atc=atc)
    for _ in range(2):
        backend.compile(two_io_model(), fp32).close()
    assert [c.result for c in fake.calls if c.name == "init"] == [0, 100002]
    assert acl_errors.finalize_owned(fake) is False and fake.initialised
    assert_clean(fake)
    assert fake.finalize() == 0


def test_a_runtime_that_allows_init_after_finalize_is_initialised_again(atc, fp32):
    """The newest runtime allows aclInit after aclFinalize; if the application finalised
    AscendCL in between, hetnpu initialises it again instead of failing."""
    fake = FakeAcl(init_after_finalize=True)
    backend = AscendBackend(acl_module=fake, atc=atc)
    backend.compile(two_io_model(), fp32).close()
    assert fake.finalize() == 0  # another user of AscendCL in the process shuts it down
    with backend.compile(two_io_model(), fp32) as exe:
        np.testing.assert_array_equal(
            exe.run(two_io_feeds())["y"], ort_run(two_io_model(), two_io_feeds())["y"]
        )
    assert [c.result for c in fake.calls if c.name == "init"] == [0, 0]
    assert [c.result for c in fake.calls if c.name == "rt.set_device"] == [0, 100001, 0]
    assert acl_errors.finalize_owned(fake) is True, (
        "hetnpu's second acl.init is its own to finalise"
    )
    assert not fake.initialised and fake.leaks() == []
    # The one refused call is how hetnpu learns that AscendCL was finalised under it.
    assert fake.violations == ["rt.set_device before acl.init"]


def test_an_older_runtime_finalised_by_the_application_says_why_it_fails(atc, fp32):
    fake = FakeAcl()
    backend = AscendBackend(acl_module=fake, atc=atc)
    backend.compile(two_io_model(), fp32).close()
    assert fake.finalize() == 0
    with pytest.raises(AclError, match=r"acl.rt.set_device failed: 100001") as err:
        backend.compile(two_io_model(), fp32)
    assert "does not initialise again" in " ".join(err.value.__notes__)
    assert fake.leaks() == []


# -- 5. 5-D inputs ------------------------------------------------------------------------------
def test_five_d_inputs_are_declared_ncdhw(atc, fp32):
    model = single_op_model("Relu", {"clip": [1, 2, 3, 4, 4]}, [1, 2, 3, 4, 4])
    fake = FakeAcl()
    with AscendBackend(acl_module=fake, atc=atc).compile(model, fp32) as exe:
        got = exe.run(feeds_for(model))["y"]
    assert "--input_format=NCDHW" in atc.calls[0]
    np.testing.assert_array_equal(got, np.maximum(feeds_for(model)["clip"], 0))
    assert_clean(fake)


def test_a_five_d_input_beside_lower_ranks_still_gets_ncdhw(atc, fp32):
    model = single_op_model("Mul", {"clip": [1, 2, 3, 4, 4], "scale": [4]}, [1, 2, 3, 4, 4])
    fake = FakeAcl()
    with AscendBackend(acl_module=fake, atc=atc).compile(model, fp32) as exe:
        got = exe.run(feeds_for(model))["y"]
    assert "--input_format=NCDHW" in atc.calls[0]
    np.testing.assert_array_equal(got, ort_run(model, feeds_for(model))["y"])
    assert_clean(fake)


def test_inputs_deeper_than_any_input_format_are_refused_before_atc(atc, fp32):
    model = single_op_model("Relu", {"t": [1, 2, 1, 2, 1, 2]}, [1, 2, 1, 2, 1, 2])
    fake = FakeAcl()
    with pytest.raises(ModelError, match=r"input 't' has 6 dims.*NCDHW.*ND at most 4"):
        AscendBackend(acl_module=fake, atc=atc).compile(model, fp32)
    assert atc.calls == [] and fake.calls == []
