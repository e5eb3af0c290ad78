"""The Ascend backend against the recording stand-in of ``acl`` and a stand-in ``atc``.

The stand-in enforces AscendCL's call order and lifecycle, really moves bytes and runs the
model in onnxruntime, so these tests check the backend's use of the documented API
(ascend-facts §4.1-§4.3) as well as its numbers. They never skip: no NPU is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu import models
from hetnpu.backends import acl_errors, get_backend
from hetnpu.backends.acl_errors import ACL_ERRORS, AclError, describe_code
from hetnpu.backends.ascend import AscendBackend
from hetnpu.backends.base import CompileOptions
from hetnpu.errors import BackendUnavailableError, ConfigError, InputError, ModelError
from tests.backends.fake_acl import ACL_DEVICE, D2D, D2H, H2D, FakeAcl, FakeAtc, documented_sequence
from tests.conftest import ort_run


def two_io_model() -> onnx.ModelProto:
    """x[2,8] @ W + b -> Relu -> y[2,4] (float32), and ArgMax(y) -> idx[2,1] (int64)."""
    w = np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["y"]),
        helper.make_node("ArgMax", ["y"], ["idx"], axis=1, keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "two_io",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 4]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info("idx", TensorProto.INT64, [2, 1]),
        ],
        [numpy_helper.from_array(w, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def two_io_feeds(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((2, 8)).astype(np.float32),
        "b": rng.standard_normal((2, 4)).astype(np.float32),
    }


@pytest.fixture
def fake() -> FakeAcl:
    return FakeAcl()


@pytest.fixture
def atc() -> FakeAtc:
    return FakeAtc()


@pytest.fixture
def opts(tmp_path: Path) -> CompileOptions:
    """fp32 stages (ATC must_keep_origin_dtype), whose outputs match onnxruntime bit for bit;
    the stand-in computes fp16 stages in float16, as the chip does."""
    return CompileOptions(cache_dir=str(tmp_path / "om"), precision="fp32")


def assert_clean(fake: FakeAcl) -> None:
    assert fake.violations == []
    assert fake.leaks() == []


def assert_exits_clean(fake: FakeAcl) -> None:
    """What the exit hook does: finalize what hetnpu initialised. The stand-in refuses a
    finalize while anything is alive, so this also proves everything was released."""
    assert "finalize" not in fake.names(), "AscendCL stays initialised until the process exits"
    assert acl_errors.finalize_owned(fake) is True
    assert fake.names()[-1] == "finalize" and not fake.initialised
    assert_clean(fake)


def test_mlp_matches_onnxruntime_exactly(fake, atc, opts):
    model = models.build("mlp", batch=3)
    x = np.random.default_rng(0).standard_normal((3, 784)).astype(np.float32)
    with AscendBackend(acl_module=fake, atc=atc).compile(model, opts) as exe:
        out = exe.run({"input": x})
        assert exe.output_names == ("probabilities",)
    ref = ort_run(model, {"input": x})["probabilities"]
    assert out["probabilities"].dtype == ref.dtype and out["probabilities"].shape == ref.shape
    np.testing.assert_array_equal(out["probabilities"], ref)
    assert_exits_clean(fake)


@pytest.mark.parametrize("execute_async", [True, False])
def test_two_inputs_two_outputs_and_the_documented_sequence(fake, atc, opts, execute_async):
    backend = AscendBackend(acl_module=fake, atc=atc, execute_async=execute_async)
    exe = backend.compile(two_io_model(), opts)
    outs = [exe.run(two_io_feeds(seed)) for seed in (0, 1)]
    exe.close()
    exe.close()  # a second close does nothing
    for seed, out in enumerate(outs):
        ref = ort_run(two_io_model(), two_io_feeds(seed))
        for name in ("y", "idx"):
            assert out[name].dtype == ref[name].dtype
            np.testing.assert_array_equal(out[name], ref[name])
    assert outs[0]["idx"].dtype == np.int64
    load, run, release = documented_sequence(2, 2, execute_async)
    assert fake.names() == load + run + run + release
    assert_exits_clean(fake)
    calls = fake.calls
    # Copies go host->device before execution and device->host after (§4.1 memcpy kinds).
    kinds = [c.args[4] for c in calls if c.name == "rt.memcpy"]
    assert kinds == [H2D, H2D, D2H, D2H] * 2
    # Every pointer and handle is released, in reverse order of creation.
    mallocs = [c.result[0] for c in calls if c.name == "rt.malloc"]
    assert [c.args[0] for c in calls if c.name == "rt.free"] == mallocs[::-1]
    buffers = [c.result for c in calls if c.name == "create_data_buffer"]
    assert [c.args[0] for c in calls if c.name == "destroy_data_buffer"] == buffers[::-1]
    assert all(c.args[1] == 0 for c in calls if c.name == "rt.malloc")  # HUGE_FIRST


def test_device_run_mode_copies_device_to_device(atc, opts):
    fake = FakeAcl(run_mode=ACL_DEVICE)
    with AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), opts) as exe:
        out = exe.run(two_io_feeds())
    np.testing.assert_array_equal(out["y"], ort_run(two_io_model(), two_io_feeds())["y"])
    assert {c.args[4] for c in fake.calls if c.name == "rt.memcpy"} == {D2D}
    assert_clean(fake)


def test_atc_command_line_and_cache(fake, atc, opts):
    fp16 = CompileOptions(cache_dir=opts.cache_dir)
    backend = AscendBackend(acl_module=fake, atc=atc, soc_version="Ascend310P3")
    backend.compile(two_io_model(), fp16).close()
    backend.compile(two_io_model(), fp16).close()
    assert len(atc.calls) == 1, "the second compile must reuse the cached .om"
    args = atc.calls[0]
    assert args[1:4] == [
        "--framework=5",
        args[2],
        "--soc_version=Ascend310P3",
    ] and args[2].startswith("--output=")
    assert "--input_shape=x:2,8;b:2,4" in args and "--input_format=ND" in args
    assert "--log=error" in args and "--precision_mode=force_fp16" in args
    cached = sorted(p.suffix for p in Path(opts.cache_dir).iterdir())
    assert cached == [".om", ".onnx"], "no temporary files may be left in the cache"
    # fp32 is a different .om (ATC's must_keep_origin_dtype), and so is another chip's.
    backend.compile(two_io_model(), opts).close()
    assert "--precision_mode=must_keep_origin_dtype" in atc.calls[1]
    other = FakeAcl(soc_name="Ascend910B2")
    AscendBackend(acl_module=other, atc=atc).compile(two_io_model(), fp16).close()
    assert "--soc_version=Ascend910B2" in atc.calls[2]
    assert len(atc.calls) == 3 and len(list(Path(opts.cache_dir).glob("*.om"))) == 3
    assert_clean(fake)
    assert_clean(other)


def test_four_d_inputs_are_declared_nchw(fake, atc, opts):
    node = helper.make_node("Relu", ["img"], ["out"])
    graph = helper.make_graph(
        [node],
        "conv_in",
        [helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    img = np.linspace(-1, 1, 48, dtype=np.float32).reshape(1, 3, 4, 4)
    with AscendBackend(acl_module=fake, atc=atc).compile(model, opts) as exe:
        np.testing.assert_array_equal(exe.run({"img": img})["out"], np.maximum(img, 0))
    assert "--input_format=NCHW" in atc.calls[0] and "--input_shape=img:1,3,4,4" in atc.calls[0]


def test_default_cache_is_per_user(fake, atc, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), CompileOptions()).close()
    assert len(list((tmp_path / "xdg" / "hetnpu" / "om").glob("*.om"))) == 1


def test_missing_acl_says_to_install_cann(atc, opts, monkeypatch):
    monkeypatch.setitem(sys.modules, "acl", None)  # makes `import acl` raise ImportError
    backend = get_backend("npu", atc=atc)
    status = backend.available()
    assert not status and "CANN toolkit" in status.reason and "set_env.sh" in status.reason
    with pytest.raises(BackendUnavailableError, match=r"npu: cannot import `acl`.*CANN toolkit"):
        backend.compile(two_io_model(), opts)
    assert atc.calls == [], "nothing is converted for a backend that cannot run"


def test_an_unrelated_acl_module_is_not_taken_for_pyacl(atc, opts, monkeypatch):
    monkeypatch.setitem(sys.modules, "acl", types.ModuleType("acl"))  # e.g. PyPI's 'pyacl'
    status = AscendBackend(atc=atc).available()
    assert not status and "is not CANN's pyacl" in status.reason and "unrelated" in status.reason


def test_importing_hetnpu_never_imports_acl():
    code = (
        "import sys; sys.modules['acl'] = None\n"
        "import hetnpu, hetnpu.backends, hetnpu.backends.ascend\n"
        "from hetnpu.backends import get_backend\n"
        "print(get_backend('npu').available().ok)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_missing_atc_says_to_install_cann(fake, opts, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no atc anywhere on PATH
    backend = AscendBackend(acl_module=fake)
    status = backend.available()
    assert not status and "`atc`" in status.reason and "set_env.sh" in status.reason
    with pytest.raises(BackendUnavailableError, match=r"atc.*not on PATH.*CANN toolkit"):
        backend.compile(two_io_model(), opts)
    assert fake.calls == []


def test_failing_atc_reports_the_tail_of_its_output(fake, opts):
    atc = FakeAtc(fail_stderr="E19010: No parser is registered for Op [Foo]\nATC run failed")
    with pytest.raises(BackendUnavailableError, match=r"atc failed \(exit 255\).*E19010"):
        AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), opts)
    assert not list(Path(opts.cache_dir).glob("*.om"))
    assert fake.names() == ["init", "get_soc_name"], "ATC needs the chip's name, nothing more"
    assert [p.name for p in Path(opts.cache_dir).iterdir() if p.name.startswith(".")] == []


def test_the_real_atc_runner_is_found_on_path(opts, tmp_path, monkeypatch):
    script = tmp_path / "bin" / "atc"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho 'E10001: Value [Ascend999] for --soc_version' >&2\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(script.parent))
    backend = AscendBackend(acl_module=FakeAcl(soc_name="Ascend999"))
    assert backend.available()
    with pytest.raises(BackendUnavailableError, match=r"exit 1.*E10001: Value \[Ascend999\]"):
        backend.compile(two_io_model(), opts)


def test_symbolic_dims_and_unknown_precision_are_refused_before_atc(fake, atc, opts):
    backend = AscendBackend(acl_module=fake, atc=atc)
    with pytest.raises(ModelError, match=r"input 'input' has dim 0 = 'batch'.*static shapes"):
        backend.compile(models.build("mlp", dynamic_batch=True), opts)
    with pytest.raises(ConfigError, match=r"precision 'int8'.*fp16, fp32"):
        backend.compile(two_io_model(), CompileOptions(cache_dir=opts.cache_dir, precision="int8"))
    assert atc.calls == [] and fake.calls == []


def test_an_error_midway_through_load_frees_everything(fake, atc, opts):
    fake.fail_on("rt.malloc", 207001, nth=3)  # the first output's buffer
    with pytest.raises(AclError) as err:
        AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), opts)
    assert str(err.value).startswith("acl.rt.malloc failed: 207001 ACL_ERROR_RT_MEMORY_ALLOCATION")
    assert (err.value.call, err.value.code) == ("acl.rt.malloc", 207001)
    names = fake.names()
    after = names[names.index("rt.malloc") + 3 :]
    assert after == [
        "rt.set_context",
        "rt.free",
        "rt.free",
        "mdl.unload",
        "mdl.destroy_desc",
        "rt.destroy_stream",
        "rt.destroy_context",
        "rt.reset_device",
    ]
    assert_exits_clean(fake)


def test_an_error_in_run_releases_everything_and_later_runs_refuse(fake, atc, opts):
    exe = AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), opts)
    exe.run(two_io_feeds())
    fake.fail_on("mdl.execute_async", 207003)
    with pytest.raises(AclError, match=r"acl.mdl.execute_async failed: 207003 ACL_ERROR_RT_AICORE"):
        exe.run(two_io_feeds())
    assert_clean(fake)
    assert fake.names()[-1] == "rt.reset_device"
    with pytest.raises(BackendUnavailableError, match=r"no longer loaded.*207003"):
        exe.run(two_io_feeds())
    n = len(fake.calls)
    exe.close()
    assert len(fake.calls) == n, "nothing is left to release"


def test_a_failing_release_still_releases_the_rest(fake, atc, opts):
    exe = AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), opts)
    fake.fail_on("mdl.unload", 500002)
    with pytest.raises(AclError, match=r"acl.mdl.unload failed: 500002 ACL_ERROR_GE_FAILURE") as e:
        exe.close()
    _, _, release = documented_sequence(2, 2)
    assert fake.names()[-len(release) :] == release
    # The model is still loaded, so the stand-in (stricter than AscendCL, which would clean up)
    # refuses to destroy its context or reset the device; the error lists those too.
    ctx = next(c.result[0] for c in fake.calls if c.name == "rt.create_context")
    model_id = next(c.result[0] for c in fake.calls if c.name == "mdl.load_from_file")
    assert fake.leaks() == [
        "rt.set_device(0) x1 without reset_device",
        f"context {ctx:#x}",
        f"model {model_id}",
    ]
    notes = " ".join(e.value.__notes__)
    assert "acl.rt.destroy_context failed" in notes and "acl.rt.reset_device failed" in notes


@pytest.mark.parametrize("feeds, match", [
    ({"x": np.zeros((2, 8), np.float32)}, "missing input 'b'"),
    ({"x": np.zeros((2, 8), np.float64), "b": np.zeros((2, 4), np.float32)}, "'x' is float64"),
    ({"x": np.zeros((2, 8), np.float32), "b": np.zeros((4, 2), np.float32)}, r"'b' .*\[4, 2\]"),
])  # fmt: skip
def test_bad_feeds_are_input_errors_and_leave_the_device_alone(fake, atc, opts, feeds, match):
    exe = AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), opts)
    n = len(fake.calls)
    with pytest.raises(InputError, match=match):
        exe.run(feeds)
    assert len(fake.calls) == n
    ref = ort_run(two_io_model(), two_io_feeds())["y"]
    np.testing.assert_array_equal(exe.run(two_io_feeds())["y"], ref)
    exe.close()
    assert_clean(fake)


def test_concurrent_runs_from_several_threads(atc, opts):
    fake = FakeAcl(call_delay_s=0.0002)  # widens the window in which unserialised runs would mix
    exe = AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), opts)
    seeds = range(24)
    refs = {s: ort_run(two_io_model(), two_io_feeds(s)) for s in seeds}
    results: dict[int, dict[str, np.ndarray]] = {}

    def worker(mine: list[int]) -> None:
        for s in mine:
            results[s] = exe.run(two_io_feeds(s))

    threads = [threading.Thread(target=worker, args=(list(seeds)[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    closer = threading.Thread(target=exe.close)  # close from yet another thread
    closer.start()
    closer.join()
    for s in seeds:
        for name in ("y", "idx"):
            np.testing.assert_array_equal(results[s][name], refs[s][name])
    worker_ids = {t.ident for t in threads}
    assert {c.thread for c in fake.calls if c.name == "rt.set_context"} >= worker_ids
    assert_clean(fake)


def test_two_stages_share_one_acl_init(fake, atc, opts):
    backend = AscendBackend(acl_module=fake, atc=atc)
    first = backend.compile(two_io_model(), opts)
    second = backend.compile(models.build("mlp", batch=1), opts)
    first.close()
    assert second.run({"input": np.ones((1, 784), np.float32)})["probabilities"].shape == (1, 10)
    second.close()
    names = fake.names()
    assert names.count("init") == 1
    assert names.count("rt.set_device") == names.count("rt.reset_device") == 2
    assert_exits_clean(fake)


def test_an_application_that_initialised_acl_keeps_it(fake, atc, opts):
    assert fake.init() == 0
    AscendBackend(acl_module=fake, atc=atc).compile(two_io_model(), opts).close()
    assert [c.result for c in fake.calls if c.name == "init"] == [0, 100002]
    assert_clean(fake)  # REPEAT_INITIALIZE is documented as ignorable, not misuse
    assert acl_errors.finalize_owned(fake) is False, (
        "finalising is the application's, which initialised"
    )
    assert "finalize" not in fake.names() and fake.initialised
    assert fake.finalize() == 0


def test_error_codes_are_named_from_the_fact_sheet():
    assert AclError("acl.rt.malloc", 207001).args[0] == (
        "acl.rt.malloc failed: 207001 ACL_ERROR_RT_MEMORY_ALLOCATION"
    )
    assert ACL_ERRORS[107000] == "ACL_ERROR_RT_PARAM_INVALID"
    assert ACL_ERRORS[300000] == "ACL_ERROR_STORAGE_OVER_LIMIT"
    assert describe_code(507899) == "507899 (aclError not in the table; 5xxxxx: internal error)"
    assert "null handle" in str(AclError("acl.mdl.create_desc", None, "returned a null handle"))


def test_the_stand_in_refuses_misuse():
    fake = FakeAcl()
    assert fake.rt.set_device(0) == 100001  # before init
    assert fake.init() == 0
    assert fake.rt.create_context(0) == (0, 107001)  # before set_device
    assert fake.rt.malloc(16, 0) == (0, 107002)  # no current context
    assert fake.rt.set_device(0) == 0
    ctx, ret = fake.rt.create_context(0)
    ptr, ret2 = fake.rt.malloc(16, 0)
    assert ret == ret2 == 0
    assert fake.mdl.execute(12345, 0, 0) == 100011  # no such model
    assert fake.rt.free(ptr) == 0 and fake.rt.free(ptr) == 200005  # double free
    assert fake.rt.memcpy(ptr, 16, ptr, 16, H2D) == 100000  # freed pointer
    assert fake.finalize() == 100000 and f"context {ctx:#x}" in fake.leaks()
    assert fake.rt.destroy_context(ctx) == 0 and fake.rt.destroy_context(ctx) == 200005
    assert fake.rt.reset_device(0) == 0 and fake.finalize() == 0 and fake.leaks() == []
    fake = FakeAcl()
    fake.fail_on("rt.malloc", 207001, nth=2)
    assert fake.init() == 0 and fake.rt.set_device(0) == 0
    assert fake.rt.create_context(0)[1] == 0
    assert fake.rt.malloc(8, 0)[1] == 0 and fake.rt.malloc(8, 0) == (0, 207001)
    assert [c.injected for c in fake.calls[-2:]] == [False, True]
