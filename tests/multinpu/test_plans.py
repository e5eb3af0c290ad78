"""Parallel plans are ExecutionPlans: valid, exportable, round-tripped through JSON, and
simulated on a topology with their collectives on the links."""

from __future__ import annotations

import json

import onnx
import pytest

from hetnpu import models
from hetnpu.devices.topology import load_topology
from hetnpu.errors import ConfigError, HetnpuError, ScheduleError
from hetnpu.graph import load
from hetnpu.scheduler.parallel import check_split, pipeline_plan, tensor_parallel_plan
from hetnpu.scheduler.plan import ExecutionPlan
from hetnpu.simulator.collectives import closed_form_s
from hetnpu.simulator.system import simulate_system
from hetnpu.traces.system import system_trace_events


def _ranks(p: int, kind: str = "npu") -> list[str]:
    return [f"{kind}:{i}" for i in range(p)]


@pytest.mark.parametrize("p", [2, 4])
def test_decoder_tp_is_megatron_two_all_reduces_per_layer(decoder, p: int) -> None:
    plan = tensor_parallel_plan(load(decoder), _ranks(p))
    kinds = [c.kind for c in plan.collectives]
    assert kinds == ["all-reduce"] * 4  # attention out and FFN down, in each of 2 layers
    # [batch, seq, hidden], as the NPU holds it: fp16, or fp32 at precision fp32.
    assert {c.nbytes for c in plan.collectives} == {1 * 4 * 64 * 2}
    fp32 = tensor_parallel_plan(load(decoder), _ranks(p), precision="fp32")
    assert {c.nbytes for c in fp32.collectives} == {1 * 4 * 64 * 4}
    # Each all-reduce moves every other rank's partial to every rank.
    assert all(len(c.transfers) == p * (p - 1) for c in plan.collectives)


def test_plan_is_valid_exportable_and_round_trips(cnn) -> None:
    plan = tensor_parallel_plan(load(cnn), _ranks(4))
    plan.validate()
    for s in plan.stages:
        onnx.checker.check_model(plan.export_stage(s.id))
    again = ExecutionPlan.from_json(json.loads(plan.dumps()), plan.graph)
    assert again.collectives == plan.collectives
    assert again.to_json() == plan.to_json()


def test_validate_refuses_a_collective_over_foreign_devices(cnn) -> None:
    import dataclasses

    plan = tensor_parallel_plan(load(cnn), _ranks(2))
    c = plan.collectives[0]
    bad = dataclasses.replace(plan, collectives=(dataclasses.replace(c, ranks=("npu:0",)),))
    with pytest.raises(ScheduleError, match="carries tensor"):
        bad.validate()


def test_tp_collectives_run_on_the_hccs_lanes_and_overlap_nothing_they_need(cnn) -> None:
    topo = load_topology("atlas-800i-a2")
    plan = tensor_parallel_plan(load(cnn), _ranks(4))
    res = simulate_system(plan, "ascend910b", topology=topo)
    assert res.topology == "atlas-800i-a2"
    (c,) = res.collectives
    assert c.kind == "all-reduce" and c.algorithm == "mesh"
    # Alone on its links, it takes the HCCL mesh time exactly (to rounding of the start time).
    assert c.duration_s == pytest.approx(closed_form_s(c.kind, c.ranks, c.nbytes, topo), rel=1e-9)
    consumers = [s for s in res.stages if s.start_s >= c.end_s]
    assert consumers, "the stages after the all-reduce wait for it"
    # Same plan, same timeline, same trace bytes.
    again = simulate_system(plan, "ascend910b", topology=topo)
    assert again == res
    assert json.dumps(system_trace_events(again)) == json.dumps(system_trace_events(res))


def test_system_trace_has_a_process_per_npu_link_lanes_and_flows(cnn, tmp_path) -> None:
    from hetnpu.traces.system import write_system_trace
    from hetnpu.traces.validate import validate_trace

    plan = tensor_parallel_plan(load(cnn), _ranks(4))
    res = simulate_system(plan, "ascend910b", topology="atlas-800i-a2")
    write_system_trace(res, tmp_path / "t.json")
    assert validate_trace(tmp_path / "t.json") == []  # flows land inside spans, lanes named
    ev = system_trace_events(res)
    names = {e["args"]["name"] for e in ev if e.get("name") == "process_name"}
    assert set(_ranks(4)) <= names and "links" in names
    lanes = {e["args"]["name"] for e in ev if e.get("name") == "thread_name"}
    assert "HCCS npu:0->npu:1" in lanes and "HCCS npu:3->npu:2" in lanes
    spans = [e for e in ev if e.get("cat") == "collective"]
    assert len(spans) == 2 * 4 * 3  # mesh all-reduce: 2 steps, 4 ranks, 3 peers each
    flows = [e for e in ev if e.get("ph") in ("s", "f") and e.get("cat") == "dataflow"]
    assert len(flows) >= 2 * 8  # into the collective from 4 ranks and out to 4


def test_pipeline_plan_cuts_a_cnn_into_consecutive_pieces() -> None:
    g = load(models.build("resnet18", batch=1))
    plan = pipeline_plan(g, _ranks(4))
    assert [s.device for s in plan.stages] == _ranks(4)
    res = simulate_system(plan, "ascend910b", topology="atlas-800i-a2")
    hops = [t for t in res.transfers if t.src_device != t.dst_device and "HCCS" in t.link]
    assert len(hops) >= 3  # activations cross npu:0->1->2->3 on HCCS
    assert all(h.start_s >= res.stages[h.src_stage].end_s for h in hops)


def test_several_npus_need_a_topology_that_has_them(cnn) -> None:
    plan = tensor_parallel_plan(load(cnn), _ranks(2))
    with pytest.raises(ConfigError, match="give a topology"):
        simulate_system(plan, "ascend910b")
    big = tensor_parallel_plan(load(cnn), ["npu:6", "npu:7", "npu:8", "npu:9"])
    with pytest.raises(ConfigError, match="no device 'npu:8'"):
        simulate_system(big, "ascend910b", topology="atlas-800i-a2")
    with pytest.raises(ConfigError, match="unknown topology"):
        simulate_system(plan, "ascend910b", topology="atlas-900")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"heads": 64, "kv_heads": 8, "layers": 80, "tp": 3}, "tp=3 does not divide the 64"),
        ({"heads": 64, "kv_heads": 8, "layers": 80, "tp": 16}, None),
        ({"heads": 64, "kv_heads": 6, "layers": 80, "tp": 4}, "K/V heads"),
        ({"heads": 64, "kv_heads": 8, "layers": 80, "tp": 8, "pp": 3}, "pp=3 does not divide"),
        ({"heads": 8, "kv_heads": 8, "layers": 4, "tp": 1, "ep": 3, "experts": 8}, "ep=3"),
    ],
)
def test_split_rules_name_the_degree_and_the_count(kwargs, message) -> None:
    if message is None:
        check_split(**kwargs)
        return
    with pytest.raises(ScheduleError, match=message):
        check_split(**kwargs)


def test_topology_files_are_checked(tmp_path) -> None:
    bad = tmp_path / "t.toml"
    bad.write_text('name = "x"\nchip = "ascend910b"\ndevices = 4\n[links.h]\nbytes_per_s = 1e9\n')
    with pytest.raises(ConfigError, match=r"missing key 'links\.h\.latency_s'"):
        load_topology(bad)
    bad.write_text(
        'name = "x"\nchip = "ascend910b"\ndevices = 4\n'
        "[links.h]\nbytes_per_s = 1e9\nlatency_s = 1e-6\n"
        '[[levels]]\nsize = 4\nshape = "full-mesh"\nlink = "roce"\n'
    )
    with pytest.raises(HetnpuError, match="link 'roce' is no link"):
        load_topology(bad)


def test_llm_split_that_does_not_divide_the_heads_is_refused() -> None:
    from hetnpu.whatif.parallel_search import step_point

    topo = load_topology("atlas-800i-a2")
    with pytest.raises(ScheduleError, match="llama-2-70b: tp=3 does not divide the 64"):
        step_point("llama-2-70b", "ascend910b", topo, 3, 1, 16, phases=())
    with pytest.raises(ScheduleError, match="pp=3 does not divide the 80 layers"):
        step_point("llama-2-70b", "ascend910b", topo, 2, 3, 16, phases=())


def test_a_degree_that_splits_nothing_or_not_the_heads_is_named(decoder, cnn) -> None:
    with pytest.raises(ScheduleError, match=r"tp=3 splits none.*'conv1' \(Conv\): 16 output"):
        tensor_parallel_plan(load(cnn), _ranks(3))
    # 8 ranks, 4 K/V heads: Megatron would replicate them; strict says so instead.
    with pytest.raises(ScheduleError, match=r"rotary_k/Reshape' .*tp=8 does not divide its 4"):
        tensor_parallel_plan(load(decoder), _ranks(8), strict=True)
    tensor_parallel_plan(load(decoder), _ranks(4), strict=True)  # 8 and 4 heads both split


def test_pipeline_decode_with_micro_batches_follows_the_gpipe_closed_form() -> None:
    from hetnpu.models.decoder.config import load_config
    from hetnpu.simulator.collectives import closed_form_s
    from hetnpu.whatif.parallel_search import LayerTime, _context, step_point

    topo = load_topology("atlas-800i-a2")
    c = load_config("llama-2-7b")
    batch, pp, micro = 4, 2, 2  # two micro-batches of two sequences
    key = ("llama-2-7b", "ascend910b4", 1, "decode", batch // micro, 1, _context(1024, 1024))
    layer, rest = 1e-3, 5e-3  # seconds: hand-set shard times, so the formula is all that runs
    p = step_point(
        "llama-2-7b", "ascend910b4", topo, 1, pp, batch, times={key: LayerTime(layer, rest)},
        phases=("decode",),
    )  # fmt: skip
    ranks = topo.device_names()
    hand_over = closed_form_s("send-recv", ranks[:2], batch // micro * c.hidden * 2, topo)
    stage = c.layers // pp * layer
    # The first micro-batch fills stage 1 and hands over; the last stage then runs both
    # micro-batches, each with the LM head.
    assert p.per_token_ms == pytest.approx(((stage + hand_over) + micro * (stage + rest)) * 1e3)
