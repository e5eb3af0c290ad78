"""Resource bounds: an event budget that refuses early, and huge dims that allocate nothing.

A dim of 2^31 must flow through load, costs, every placement strategy, the simulator and an
InferenceSession as a number, never as an allocation: each stage either succeeds (load, costs,
placement) or refuses with a HetnpuError naming what is too big. The whole sequence runs in a
subprocess whose address space is capped, so an allocation that slipped through fails there
instead of exhausting the machine, and whose peak RSS is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import hetnpu
from hetnpu.cli import main
from hetnpu.errors import ScheduleError
from hetnpu.simulator.lowering import event_budget

_SCRIPT = r"""
import json, resource, sys, warnings
warnings.simplefilter("ignore")
import numpy as np
import hetnpu
from hetnpu.graph.cost import node_cost
from hetnpu.scheduler import STRATEGIES

resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
path = sys.argv[1]
out = {}

def stage(name, fn):
    try:
        fn()
        out[name] = "ok"
    except hetnpu.HetnpuError as exc:
        out[name] = f"{type(exc).__name__}: {exc}"

g = hetnpu.load(path)
out["shape"] = list(g.tensors[g.outputs[0]].shape)
stage("cost", lambda: [node_cost(g, n) for n in g])
for s in STRATEGIES:
    stage(s, lambda s=s: hetnpu.partition(g, ["npu", "cpu"], strategy=s))
stage("simulate", lambda: hetnpu.simulate(g, "ascend910", max_events=10**6))
for devices in (["cpu"], ["sim-npu", "cpu"]):
    def session(devices=devices):
        sess = hetnpu.InferenceSession(path, devices)
        x = np.zeros([1] * len(sess.get_inputs()[0].shape), np.float32)
        sess.run(None, {sess.get_inputs()[0].name: x})
    stage("session:" + devices[0], session)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a big pytest
# process would report its parent's peak.
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
out["maxrss_mib"] = int(hwm.split()[1]) / 1024
print(json.dumps(out))
"""


def _huge_model(path) -> None:
    """Conv → MatMul → Softmax with a batch of 2^31 (a few hundred TiB of activations)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2**31, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype("f4"), "w"),
        numpy_helper.from_array(rng.standard_normal((512, 10)).astype("f4"), "fc"),
        numpy_helper.from_array(np.array([-1, 512], np.int64), "flat"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "flat"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc"], ["m"], name="fc"),
        helper.make_node("Softmax", ["m"], ["y"], name="softmax"),
    ]
    g = helper.make_graph(nodes, "huge", [x], [y], initializer=inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_huge_dims_allocate_nothing_anywhere(tmp_path) -> None:
    path = tmp_path / "huge.onnx"
    _huge_model(path)
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shape"] == [2**31, 10]
    for stage in ("cost", "capability", "affinity", "heft", "exact"):
        assert out[stage] == "ok", (stage, out[stage])
    # The simulator refuses the first op by its instruction count, before building a program.
    assert out["simulate"].startswith("ScheduleError: op 'TransData:x'")
    assert "instructions" in out["simulate"]
    # The session plans and compiles, then refuses the (necessarily wrong-shaped) input.
    for devices in ("cpu", "sim-npu"):
        assert out[f"session:{devices}"].startswith("InputError: input 'x': expected shape")
    assert out["maxrss_mib"] < 1024, out


def test_event_budget_refuses_an_op_before_simulating_it() -> None:
    g = hetnpu.load(hetnpu.models.build("mlp", batch=64))
    whole = hetnpu.simulate(g, "ascend910")
    # A budget below the run's event count but above its instruction count runs; below the
    # instruction count (a lower bound of the events) the op that crosses it is named.
    needed = []
    with event_budget(whole.events) as budget:
        hetnpu.simulate(g, "ascend910")
        needed.append(budget.needed)
    assert 0 < needed[0] <= whole.events
    crossing = r"op '/fc\d/Gemm' \(Gemm\) lowers to .* over max_events=10"
    with pytest.raises(ScheduleError, match=crossing), event_budget(10):
        hetnpu.simulate(g, "ascend910")


def test_simulate_stops_at_max_events() -> None:
    g = hetnpu.load(hetnpu.models.build("mlp", batch=64))
    events = hetnpu.simulate(g, "ascend910").events
    with pytest.raises(ScheduleError, match="max_events"):
        hetnpu.simulate(g, "ascend910", max_events=events // 4)
    assert hetnpu.simulate(g, "ascend910", max_events=events).events == events


def test_cli_max_events_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    path = tmp_path / "mlp.onnx"
    onnx.save(hetnpu.models.build("mlp"), str(path))
    code = main(["simulate", str(path), "--chip", "ascend910", "--max-events", "20"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "max_events" in err


def test_max_events_refuses_before_the_first_event_when_lowering_already_exceeds_it(
    monkeypatch,
) -> None:
    import simpy

    g = hetnpu.load(hetnpu.models.build("resnet50", image_size=64))
    steps = []
    real_step = simpy.Environment.step

    def counting_step(self):
        steps.append(1)
        return real_step(self)

    monkeypatch.setattr(simpy.Environment, "step", counting_step)
    with pytest.raises(ScheduleError, match=r"lowers to .* over max_events=1,000"):
        hetnpu.simulate(g, "ascend910", max_events=1000)
    assert steps == []  # refused from the instruction counts alone
