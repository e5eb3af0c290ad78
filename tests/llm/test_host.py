"""Host scheduling of dynamic-shape graphs: closed forms of the host/device recurrence, which
ops vary, and the LLM estimate that waits for the host."""

from __future__ import annotations

import json

import pytest

from hetnpu.cli import main
from hetnpu.devices.presets import load_npu
from hetnpu.models.decoder import load_config
from hetnpu.whatif import llm
from hetnpu.whatif.llm import estimate
from hetnpu.whatif.llm_host import host_scheduled, varying_ops

from .test_whatif import MEDIUM, json_path

DECODE = {"phase": "decode", "seq": 1, "kv_len": 64, "kv_cache": "inplace", "rope": "fused",
          "mask": "is_causal"}  # fmt: skip


def kernels(n: int, cycles: int) -> list[tuple[str, int, bool, str]]:
    return [(f"op{i}", cycles, True, "matmul") for i in range(n)]


def test_ops_shorter_than_the_host_wait_for_it_one_by_one():
    ops = kernels(5, 30)
    total, by_class = host_scheduled(ops, frozenset(n for n, *_ in ops), 100)
    assert total == 5 * 100 + 30  # each op starts when the host has scheduled it
    assert by_class == {"host": total - 5 * 30, "matmul": 5 * 30}


def test_ops_longer_than_the_host_hide_it_after_the_first():
    ops = kernels(5, 200)
    total, by_class = host_scheduled(ops, frozenset(n for n, *_ in ops), 100)
    assert total == 100 + 5 * 200
    assert by_class["host"] == 100


def test_a_static_run_costs_the_host_one_launch_and_a_varying_op_ends_it():
    ops = kernels(4, 30)
    total, _ = host_scheduled(ops, frozenset(), 100)
    assert total == 100 + 4 * 30  # one sunk subgraph
    # static, static, varying, static: three host ops (the first run's launch, the varying op,
    # the second run's launch), the last op starting after the third
    total, by_class = host_scheduled(ops, frozenset({"op2"}), 100)
    assert total == 3 * 100 + 30
    assert by_class["host"] == total - 4 * 30
    # ops with no kernel (fused epilogues) schedule nothing
    total, _ = host_scheduled([("fused", 0, False, "other"), *ops], frozenset(), 100)
    assert total == 100 + 4 * 30


def test_at_batch_one_only_the_ops_that_see_the_kv_length_vary():
    c = load_config(MEDIUM)
    one = varying_ops(c, 1, 1, DECODE)
    assert "/model/layers.0/self_attn/Attention" in one
    assert not any("proj" in n or "mlp" in n or "layernorm" in n for n in one)
    # Past batch 1 the batch is symbolic too (torch.compile's 0/1 specialization ends).
    two = varying_ops(c, 1, 2, DECODE)
    assert one < two
    assert any("q_proj" in n for n in two) and any("mlp" in n for n in two)
    # A prompt varies with its length at any batch.
    prompt = varying_ops(c, 1, 1, {**DECODE, "phase": "prefill", "seq": 32, "kv_len": 0})
    assert any("q_proj" in n for n in prompt)


def test_a_host_bound_decode_step_takes_the_hosts_time_per_op():
    c = load_config(MEDIUM)
    kw = {"batch": 2, "prompt": 64, "generate": 2, "precision": "fp16"}
    slow_host = {"host_op_s": 1e-3}  # far longer than any op of this small model
    sunk = estimate(c, "ascend910b4", overrides=slow_host, **kw)
    hosted = estimate(c, "ascend910b4", overrides=slow_host, dynamic=True, **kw)
    step = hosted.decode
    assert step.bound["host"] == "host" and step.by_class["host"] > 0.9 * step.seconds
    # Every kernel of the step waits its host op: the step is (kernels) x 1 ms and the last op.
    spec = load_npu("ascend910b4", slow_host)
    shape = {**DECODE, "kv_len": 64}  # the one decode step of prompt 64, generate 2
    res = llm._simulate(c, spec, "fp16", 1, batch=2, **shape)
    per_layer = sum(1 for o in res.ops if o.bound not in ("fused", "zero") and "/layers." in o.name)
    rest = sum(1 for o in res.ops if o.bound not in ("fused", "zero")) - per_layer
    assert step.seconds == pytest.approx((rest + c.layers * per_layer) * 1e-3, rel=0.01)
    assert step.seconds > 10 * sunk.decode.seconds
    assert hosted.graph["shapes"] == "dynamic" and sunk.graph["shapes"] == "static"
    # Without a host figure on the chip, a dynamic graph is timed as sunk.
    plain = estimate(c, "ascend910b4", overrides={"host_op_s": None}, dynamic=True, **kw)
    assert plain.decode.seconds == pytest.approx(sunk.decode.seconds)


def test_at_batch_one_the_host_hides_behind_the_device():
    c = load_config(MEDIUM)
    kw = {"batch": 1, "prompt": 64, "generate": 2, "precision": "fp16"}
    host = {"host_op_s": 20e-6}
    sunk = estimate(c, "ascend910b4", overrides=host, **kw).decode.seconds
    hosted = estimate(c, "ascend910b4", overrides=host, dynamic=True, **kw).decode.seconds
    # One varying op a layer and the sunk runs between them: a few host launches at most.
    assert sunk <= hosted < sunk + 12 * 20e-6


def test_cli_dynamic_prints_the_host_class(capsys):
    spec = load_npu("ascend910b4")
    assert spec.host_op_s  # the Atlas 800I A2 host's calibrated figure
    rc = main(["llm", json_path(MEDIUM), "--batch", "2", "--prompt", "64", "--generate", "2",
               "--dynamic", "--set", "host_op_s=1e-3", "--json"])  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["graph"]["shapes"] == "dynamic"
    assert out["decode"]["by_class"]["host"] > 0


def test_a_host_bound_prompt_replays_every_layer_with_its_host_ops():
    c = load_config(MEDIUM)
    spec = load_npu("ascend910b4", {"host_op_s": 1e-3})
    shape = {**DECODE, "phase": "prefill", "seq": 32, "kv_len": 0}
    step = llm.phase_time(c, spec, "fp16", batch=1, dynamic=True, **shape)
    # A prompt varies with its length: every kernel of every layer waits its host op.
    res = llm._simulate(c, spec, "fp16", 2, batch=1, **shape)
    kernels = [o.name for o in res.ops if o.bound not in ("fused", "zero")]
    per_layer = sum(1 for n in kernels if n.startswith("/model/layers.1/"))
    rest = sum(1 for n in kernels if "/layers." not in n)
    assert step.seconds == pytest.approx((rest + c.layers * per_layer) * 1e-3, rel=0.01)


def test_an_extrapolated_prompt_batch_waits_for_the_host_after_its_ops_are_extrapolated(
    monkeypatch,
):
    c = load_config(MEDIUM)
    monkeypatch.setattr(llm, "PREFILL_MACS", 8 * 256 * llm._token_layer_macs(c, 256))
    kw = {"phase": "prefill", "seq": 256, "kv_len": 0, "batch": 64}  # from passes of 8 and 16
    for host_s in (20e-6, 5e-3):
        spec = load_npu("ascend910b4", {"host_op_s": host_s})
        sunk = llm.phase_time(c, spec, "fp16", **kw)
        hosted = llm.phase_time(c, spec, "fp16", dynamic=True, **kw)
        assert hosted.seconds >= sunk.seconds  # a host never makes a pass faster
        assert hosted.by_class["host"] >= 0
        assert hosted.seconds == pytest.approx(sum(hosted.by_class.values()))
        # The device's share is the sunk pass's, op by op.
        device = {k: v for k, v in hosted.by_class.items() if k != "host"}
        assert device == pytest.approx(dict(sunk.by_class))


def test_at_batch_one_attention_over_a_concatenated_cache_varies():
    c = load_config(MEDIUM)
    shape = {**DECODE, "kv_cache": "concat-repeat"}
    one = varying_ops(c, 1, 1, shape)
    # Its output [b, heads, 1, d] does not grow, its K/V inputs do.
    assert "/model/layers.0/self_attn/Attention" in one
    assert not any("proj" in n or "mlp" in n for n in one)
    # A pass of one sequence standing for a larger batch has the batch symbolic.
    assert varying_ops(c, 1, 1, shape, symbolic_batch=True) > one


def test_every_pass_pays_the_chips_model_execute_once():
    # A prompt pass and each decode step are one graph run the host waits for: the chip's
    # model_execute_s is added once per pass, however many layers it replays, sunk or dynamic.
    c = load_config(MEDIUM)
    kw = {"batch": 2, "prompt": 64, "generate": 3, "precision": "fp16"}
    cost = 250e-6
    for dynamic in (False, True):
        plain = estimate(c, "ascend910b4", overrides={"model_execute_s": 0.0},
                         dynamic=dynamic, **kw)  # fmt: skip
        paid = estimate(c, "ascend910b4", overrides={"model_execute_s": cost},
                        dynamic=dynamic, **kw)  # fmt: skip
        assert "execute" not in plain.prefill.by_class
        for phase in ("prefill", "decode"):
            a, b = getattr(plain, phase), getattr(paid, phase)
            assert b.by_class["execute"] == pytest.approx(cost)
            assert b.bound["execute"] == "host"
            assert b.seconds == pytest.approx(a.seconds + cost)
            assert b.seconds == pytest.approx(sum(b.by_class.values()))
        # Generating 3 tokens runs the prompt pass and 2 decode steps.
        assert paid.ttft_s == pytest.approx(plain.ttft_s + cost)
        assert paid.decode_s == pytest.approx(plain.decode_s + 2 * cost)


def test_an_extrapolated_prompt_batch_pays_the_execute_cost_once(monkeypatch):
    # The prompt pass extrapolated from passes of 8 and 16 sequences to 64 is still one run.
    c = load_config(MEDIUM)
    monkeypatch.setattr(llm, "PREFILL_MACS", 8 * 256 * llm._token_layer_macs(c, 256))
    kw = {"phase": "prefill", "seq": 256, "kv_len": 0, "batch": 64}
    plain = llm.phase_time(c, load_npu("ascend910b4", {"model_execute_s": 0.0}), "fp16", **kw)
    paid = llm.phase_time(c, load_npu("ascend910b4", {"model_execute_s": 250e-6}), "fp16", **kw)
    assert paid.seconds == pytest.approx(plain.seconds + 250e-6)
    assert paid.by_class["execute"] == pytest.approx(250e-6)
