"""hetnpu llm: memory fit by hand, the physics of prefill and decode, fast replay vs full."""

from __future__ import annotations

import json

import pytest

from hetnpu.cli import main
from hetnpu.devices.presets import load_npu
from hetnpu.errors import ConfigError
from hetnpu.models.decoder import load_config
from hetnpu.whatif import llm
from hetnpu.whatif.llm import WORKSPACE_BYTES, estimate, memory, phase_time

from .conftest import tiny_config

# Big enough for the Cube and HBM to matter, small enough to simulate in a second.
MEDIUM = tiny_config(
    hidden_size=1024,
    intermediate_size=2816,
    num_attention_heads=8,
    num_key_value_heads=2,
    num_hidden_layers=4,
    vocab_size=4096,
    max_position_embeddings=4096,
)


def test_memory_is_the_hand_calculation():
    c = load_config("llama-2-7b")
    mem = memory(c, 32 * 2**30, batch=4, prompt=1024, generate=1024, precision="fp16")
    weights = 6_738_415_616 * 2
    kv_token = 2 * 32 * 32 * 128 * 2  # K and V, 32 layers, 32 kv heads of 128, fp16
    act_token = (3 * 4096 + 3 * 4096 + 2 * 11008) * 2
    assert mem.weights == weights
    assert mem.kv_cache == 4 * 2048 * kv_token
    assert mem.activations == 4 * (1024 * act_token + 4 * 32000)
    assert mem.total == weights + mem.kv_cache + mem.activations + WORKSPACE_BYTES
    per_seq = 2048 * kv_token + 1024 * act_token + 4 * 32000
    free = 32 * 2**30 - weights - WORKSPACE_BYTES
    assert mem.max_batch == free // per_seq
    assert mem.fits == (mem.total <= 32 * 2**30)
    # One more sequence than max_batch does not fit; max_batch does.
    over = memory(c, 32 * 2**30, batch=mem.max_batch + 1, prompt=1024, generate=1024,
                  precision="fp16")  # fmt: skip
    at = memory(c, 32 * 2**30, batch=mem.max_batch, prompt=1024, generate=1024,
                precision="fp16")  # fmt: skip
    assert at.fits and not over.fits


def test_largest_context_fits_and_stops_at_the_models_positions():
    c = load_config("llama-2-7b")  # max_position_embeddings 4096
    # 32 GiB: memory stops the context first; the next 2 tokens per sequence would not fit.
    mem = memory(c, 32 * 2**30, batch=16, prompt=1024, generate=1024, precision="fp16")
    ctx = mem.max_context
    assert 0 < ctx < c.max_positions
    half = ctx // 2
    assert memory(c, 32 * 2**30, batch=16, prompt=half, generate=half, precision="fp16").fits
    over = memory(c, 32 * 2**30, batch=16, prompt=half + 1, generate=half + 1, precision="fp16")
    assert not over.fits
    # Plenty of memory: the model's positions stop it.
    roomy = memory(c, 2**40, batch=1, prompt=1024, generate=1024, precision="fp16")
    assert roomy.max_context == c.max_positions == 4096


def test_a_request_that_cannot_fit_names_the_numbers():
    with pytest.raises(ConfigError, match=r"needs 129\.\d GiB .* has 32\.0 GiB"):
        estimate("llama-2-70b", "ascend910b4", prompt=16, generate=2, require_fit=True)


# The physics tests leave the kernel launches out (task_launch_s = 0): a launch is a fixed cost
# per kernel that neither bandwidth nor Cube throughput changes.
NO_LAUNCH = {"task_launch_s": 0.0}


def _decode(hbm: float) -> float:
    spec = load_npu("ascend910b4", {"hbm_bytes_per_s": hbm, **NO_LAUNCH})
    c = load_config("llama-2-7b")  # weights dominate a batch-1 step
    return phase_time(c, spec, "fp16", phase="decode", batch=1, seq=1, kv_len=256).seconds


def test_batch_one_decode_time_follows_hbm_bandwidth():
    # Halving the bandwidth (below the cores' MTE2 rate, so HBM is the limit) doubles the step.
    slow, fast = _decode(0.3e12), _decode(0.6e12)
    assert slow / fast == pytest.approx(2.0, rel=0.1)


def test_long_prompt_prefill_follows_cube_throughput():
    c = load_config(MEDIUM)
    times = []
    for cores in (10, 20):  # twice the Cube cores, twice the chip's MACs per cycle
        spec = load_npu("ascend910b4", {"ai_cores": cores, **NO_LAUNCH})
        times.append(
            phase_time(c, spec, "fp16", phase="prefill", batch=1, seq=2048, kv_len=0).by_class
        )
    ratio = (times[0]["matmul"] + times[0]["attention"]) / (
        times[1]["matmul"] + times[1]["attention"]
    )
    assert ratio == pytest.approx(2.0, rel=0.15)


def test_fast_replay_is_within_two_percent_of_the_full_simulation(monkeypatch):
    config = load_config(MEDIUM)
    # Layers replayed and decode steps sampled, the whole batch simulated.
    kwargs = {"batch": 16, "prompt": 256, "generate": 12, "precision": "fp16"}
    fast = estimate(config, "ascend910b4", **kwargs)
    full = estimate(config, "ascend910b4", replay=False, **kwargs)
    assert fast.ttft_s == pytest.approx(full.ttft_s, rel=0.02)
    assert fast.decode_s == pytest.approx(full.decode_s, rel=0.02)
    assert len(fast.per_token_s) < len(full.per_token_s)  # fewer steps simulated
    # The prompt batch extrapolated from passes of 8 and 16 sequences (2048 and 4096 rows, with
    # L2 cut to an eighth and a quarter) to 64: the budget lowered so this small model takes the
    # path a 7B model's batch 16 does.
    monkeypatch.setattr(llm, "PREFILL_MACS", 8 * 256 * llm._token_layer_macs(config, 256))
    kwargs = {"batch": 64, "prompt": 256, "generate": 1, "precision": "fp16"}
    fast = estimate(config, "ascend910b4", **kwargs)
    full = estimate(config, "ascend910b4", replay=False, **kwargs)
    assert fast.ttft_s == pytest.approx(full.ttft_s, rel=0.02)
    assert fast.wall_s < full.wall_s / 2


def test_prompt_passes_see_l2_cut_to_their_share_of_the_batch(monkeypatch):
    config = load_config(MEDIUM)
    spec = load_npu("ascend910b4")
    monkeypatch.setattr(llm, "PREFILL_MACS", 8 * 256 * llm._token_layer_macs(config, 256))
    seen: list[tuple[int, int]] = []
    real = llm._simulate

    def spy(config, spec, precision, layers, **shape):
        seen.append((shape["batch"], spec.l2_bytes))
        return real(config, spec, precision, layers, **shape)

    monkeypatch.setattr(llm, "_simulate", spy)
    phase_time(config, spec, "fp16", phase="prefill", batch=64, seq=256, kv_len=0)
    assert seen == [(8, spec.l2_bytes // 8), (16, spec.l2_bytes // 4)]
    seen.clear()
    phase_time(config, spec, "fp16", phase="prefill", batch=16, seq=256, kv_len=0)
    assert seen == [(16, spec.l2_bytes)]  # the whole batch: nothing extrapolated, L2 whole


def test_the_prompt_pass_budget_is_in_macs_not_rows(monkeypatch):
    # MACs of a prompt token in one layer, by hand: projections, FFN (the routed experts only),
    # QK^T and PV over half the prompt on average.
    mixtral = load_config("mixtral-8x7b")  # 4096 wide, 32/8 heads of 128, 2 of 8 experts
    h, q, kv = 4096, 32 * 128, 8 * 128
    assert llm._token_layer_macs(mixtral, 1024) == (
        h * (q + 2 * kv) + q * h + 2 * 3 * h * 14336 + h * 8 + q * 1024
    )
    # A 7B layer's passes are 2 sequences of 1024 tokens; the 19x narrower test model's, 39.
    for name in ("qwen2-7b", "chatglm3-6b"):
        assert int(llm.PREFILL_MACS // (1024 * llm._token_layer_macs(load_config(name), 1024))) == 2
    medium = load_config(MEDIUM)
    assert int(llm.PREFILL_MACS // (1024 * llm._token_layer_macs(medium, 1024))) == 39
    # phase_time follows the budget: the passes are what it says.
    seen: list[int] = []
    monkeypatch.setattr(llm, "_simulate", lambda c, s, p, n, **shape: seen.append(shape["batch"]))
    monkeypatch.setattr(llm, "_phase", lambda *a, **k: llm.PhaseTime(1.0, {}, {}, 0.0))
    spec = load_npu("ascend910b4")
    phase_time(mixtral, spec, "fp16", phase="prefill", batch=8, seq=1024, kv_len=0)
    assert seen == [1, 2]  # 5e11 / (1024 x 398 M) = 1 sequence per pass
    seen.clear()
    phase_time(medium, spec, "fp16", phase="prefill", batch=117, seq=1024, kv_len=0)
    assert seen == [117]  # up to three passes' sequences: simulated whole


def test_a_sweep_over_hbm_bandwidth_shows_decode_slowing(capsys):
    # Both points lie below what the 20 cores' MTE2 engines read of row-major weights (about
    # 0.67 TB/s at the 910B's ND->NZ fraction), so HBM sets the decode pace at both.
    rc = main([
        "llm", json_path(MEDIUM), "--chip", "ascend910b4", "--prompt", "64", "--generate", "3",
        "--sweep", "hbm_bytes_per_s=0.2e12,0.4e12", "--set", "task_launch_s=0", "--json",
    ])  # fmt: skip
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["point"]["hbm_bytes_per_s"] for r in rows] == [0.2e12, 0.4e12]
    assert rows[0]["mean_token_s"] > 1.7 * rows[1]["mean_token_s"]


def test_cli_bad_input_exits_2_with_one_line(capsys, tmp_path):
    assert main(["llm", "no-such-model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-model" in err[0]
    assert main(["llm", "llama-2-7b", "--prompt", "4000", "--generate", "200"]) == 2
    assert "4200 tokens exceeds its 4096 positions" in capsys.readouterr().err
    assert main(["llm", "llama-2-7b", "--mask", "band", "--generate", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mask 'band'" in err[0]


_PATHS: dict[str, str] = {}


def json_path(config: dict) -> str:
    import tempfile
    from pathlib import Path

    key = json.dumps(config, sort_keys=True)
    if key not in _PATHS:
        path = Path(tempfile.mkdtemp()) / "config.json"
        path.write_text(key)
        _PATHS[key] = str(path)
    return _PATHS[key]


def test_an_even_moe_step_costs_what_the_dense_ffn_of_its_k_experts_does():
    spec = load_npu("ascend910b4", NO_LAUNCH)  # the MoE launches more, smaller kernels
    # 1536 columns are 3072-B rows, a whole number of 512-B lines like the dense 3072: rows off
    # those lines (1408 = 2816 B) read slower on this chip, which is not what is compared here.
    moe = load_config(
        dict(MEDIUM, architectures=["MixtralForCausalLM"], intermediate_size=1536,
             num_local_experts=8, num_experts_per_tok=2)
    )  # fmt: skip
    dense = load_config(dict(MEDIUM, intermediate_size=2 * 1536))
    steps = [
        phase_time(c, spec, "fp16", phase="decode", batch=1, seq=1, kv_len=128).by_class["matmul"]
        for c in (moe, dense)
    ]
    assert steps[0] == pytest.approx(steps[1], rel=0.15)
    # All 8 experts' weights would take about 4x the FFN's HBM time: the dispatch is not dense.
    every = phase_time(moe, spec, "fp16", phase="decode", batch=4, seq=1, kv_len=128)
    assert every.by_class["matmul"] > 2.0 * steps[0]


def test_hetnpu_sweep_takes_a_decoder_config(tmp_path, capsys):
    import csv

    out = tmp_path / "sweep"
    rc = main([
        "sweep", json_path(MEDIUM), "--chip", "ascend910b4", "--grid",
        "hbm_bytes_per_s=0.2e12,0.4e12", "--set", "prompt=64", "--set", "generate=3",
        "--set", "task_launch_s=0", "--workers", "1", "-o", str(out),
    ])  # fmt: skip
    assert rc == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [float(r["hbm_bytes_per_s"]) for r in rows] == [0.2e12, 0.4e12]
    assert float(rows[0]["mean_token_s"]) > 1.7 * float(rows[1]["mean_token_s"])
    assert all(r["status"] == "ok" and r["fits"] == "True" for r in rows)
    # A key that describes ONNX inputs is refused before anything runs.
    assert main(["sweep", json_path(MEDIUM), "--grid", "shape=1x3", "-o", str(out)]) == 2
    assert "does not apply to an LLM" in capsys.readouterr().err


def test_an_llm_sweep_takes_bf16_and_refuses_int8_before_running(tmp_path, capsys):
    import csv

    out = tmp_path / "sweep"
    args = ["sweep", json_path(MEDIUM), "--chip", "ascend910b4", "--set", "prompt=16",
            "--set", "generate=2", "--workers", "1", "-o", str(out)]  # fmt: skip
    assert main([*args, "--grid", "precision=bf16"]) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["status"] for r in rows] == ["ok"]
    assert main([*args, "--grid", "precision=int8"]) == 2
    assert "precision 'int8': an LLM runs in fp16, bf16, fp32" in capsys.readouterr().err


def test_a_tensor_mask_slows_the_prompt_only_and_the_answer_says_which_graph():
    kwargs = {"batch": 2, "prompt": 2048, "generate": 3, "overrides": NO_LAUNCH}
    flag = estimate(MEDIUM, "ascend910b4", **kwargs)
    tensor = estimate(MEDIUM, "ascend910b4", mask="tensor", **kwargs)
    # The whole square of scores, not the causal half: the attention takes longer.
    assert tensor.prefill.by_class["attention"] > 1.3 * flag.prefill.by_class["attention"]
    assert tensor.ttft_s > flag.ttft_s
    assert tensor.per_token_s == flag.per_token_s  # a decode step has no mask
    assert tensor.to_dict()["graph"] == {
        "kv_cache": "inplace",
        "rope": "fused",
        "mask": "tensor",
        "shapes": "static",
    }
    assert flag.to_dict()["graph"]["mask"] == "is_causal"


def test_an_llm_sweep_varies_the_graph_form(tmp_path, capsys):
    import csv

    out = tmp_path / "sweep"
    args = ["sweep", json_path(MEDIUM), "--chip", "ascend910b4", "--set", "prompt=2048",
            "--set", "generate=1", "--set", "task_launch_s=0", "--workers", "1",
            "-o", str(out)]  # fmt: skip
    assert main([*args, "--grid", "mask=is_causal,tensor", "--grid", "rope=fused,decomposed"]) == 0
    rows = {(r["mask"], r["rope"]): float(r["ttft_s"])
            for r in csv.DictReader((out / "results.csv").open())}  # fmt: skip
    assert len(rows) == 4
    for rope in ("fused", "decomposed"):
        # The whole square of scores against about half of it: the prompt takes longer.
        assert rows[("tensor", rope)] > rows[("is_causal", rope)]
    assert rows[("is_causal", "decomposed")] > rows[("is_causal", "fused")]
    assert main([*args, "--grid", "mask=band"]) == 2
    assert "mask: expected one of is_causal, tensor, got 'band'" in capsys.readouterr().err


def test_llm_trace_follows_the_first_sweep_point(tmp_path):
    trace = tmp_path / "t.json"
    rc = main(["llm", json_path(MEDIUM), "--prompt", "16", "--generate", "2",
               "--sweep", "chip=ascend910b", "--trace", str(trace)])  # fmt: skip
    assert rc == 0
    assert '"ascend910b"' in trace.read_text() and "ascend910b4" not in trace.read_text()


def test_the_report_names_the_graph_it_timed(capsys):
    rc = main(["llm", json_path(MEDIUM), "--prompt", "16", "--generate", "2",
               "--kv-cache", "concat", "--mask", "tensor"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "graph: KV cache concat, RoPE fused, prompt mask tensor" in out
    assert "TTFT (prefill)" in out and "decode per token" in out
