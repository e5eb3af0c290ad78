"""Expert parallelism of MoE decoders: the search's EP step time from its parts, memory per
rank, the split rules, and the EP plan (all-to-all dispatch and combine) run on sim-npu
devices against one device."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import hetnpu
from hetnpu.cli import main
from hetnpu.devices.topology import load_topology
from hetnpu.errors import HetnpuError, ScheduleError
from hetnpu.graph import load
from hetnpu.models.decoder.config import load_config
from hetnpu.models.decoder.graph import build_decoder
from hetnpu.scheduler.parallel import expert_parallel_plan
from hetnpu.simulator.collectives import closed_form_s
from hetnpu.simulator.system import simulate_system
from hetnpu.whatif.llm import memory
from hetnpu.whatif.parallel_search import LayerTime, _context, step_point
from hetnpu.whatif.shard_time import shard as _shard

MODEL, CHIP = "mixtral-8x7b", "ascend910b4"
BATCH, SEQ, HIDDEN, K = 2, 4, 64, 2  # the tiny MoE's tokens: 8, each to 2 of 8 experts


def tiny_moe() -> object:
    c = dataclasses.replace(
        load_config(MODEL),
        name="tiny-mixtral",
        layers=2,
        hidden=HIDDEN,
        heads=8,
        kv_heads=4,
        head_dim=8,
        intermediate=96,
        vocab=96,
        rotary_dim=8,
        experts_per_token=K,
        expert_intermediate=96,
        max_positions=64,
    )
    return build_decoder(c, "prefill", batch=BATCH, seq=SEQ, attention="decomposed", moe="even")


@pytest.fixture(scope="module")
def moe():
    return tiny_moe()


def _feeds() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "input_ids": rng.integers(0, 96, (BATCH, SEQ)).astype(np.int64),
        "position_ids": np.tile(np.arange(SEQ), (BATCH, 1)).astype(np.int64),
    }


def _ranks(p: int, kind: str = "npu") -> list[str]:
    return [f"{kind}:{i}" for i in range(p)]


# --- the search --------------------------------------------------------------------------


@pytest.mark.parametrize(("tp", "pp"), [(4, 1), (2, 2)])
def test_ep_decode_step_is_its_shard_time_plus_the_closed_form_collectives(tp, pp) -> None:
    topo = load_topology("atlas-800i-a2")
    c = load_config(MODEL)
    batch = 16
    micro = pp
    b = batch // micro
    key = (MODEL, CHIP, tp, "decode", b, 1, _context(1024, 1024), tp)
    layer, rest = 2e-3, 7e-3  # seconds: hand-set shard times, so the formula is all that runs
    p = step_point(
        MODEL, CHIP, topo, tp, pp, batch, ep=tp, times={key: LayerTime(layer, rest)},
        phases=("decode",),
    )  # fmt: skip
    ranks = topo.device_names()
    hidden = b * c.hidden * 2
    # Sequence-parallel TP: a reduce-scatter after attention, an all-gather before the next.
    tp_s = closed_form_s("reduce-scatter", ranks[:tp], hidden, topo) + closed_form_s(
        "all-gather", ranks[:tp], hidden, topo
    )
    # Each rank dispatches and gets back ceil(b/ep) tokens x k choices of hidden fp16.
    rows = math.ceil(b / tp) * c.experts_per_token
    a2a = closed_form_s("all-to-all", ranks[:tp], rows * c.hidden * 2, topo)
    assert a2a == pytest.approx(topo.levels[0].link.send_s(rows * c.hidden * 2 / tp))  # mesh
    stage = c.layers // pp * (layer + tp_s + 2 * a2a)
    hand_over = closed_form_s("send-recv", [ranks[0], ranks[tp]], hidden, topo) if pp > 1 else 0
    expected = (pp - 1) * (stage + hand_over) + micro * (stage + rest)
    assert p.ep == tp and p.per_token_ms == pytest.approx(expected * 1e3, rel=1e-12)
    assert p.alltoall_ms == pytest.approx(c.layers * 2 * a2a * 1e3, rel=1e-12)
    assert p.allreduce_ms == pytest.approx(c.layers * tp_s * 1e3, rel=1e-12)
    # The same split without EP pays two all-reduces a layer and no all-to-all.
    dense_key = key[:-1]
    q = step_point(
        MODEL, CHIP, topo, tp, pp, batch, times={dense_key: LayerTime(layer, rest)},
        phases=("decode",),
    )  # fmt: skip
    ar = closed_form_s("all-reduce", ranks[:tp], hidden, topo)
    assert q.ep == 1 and q.alltoall_ms is None
    assert q.allreduce_ms == pytest.approx(c.layers * 2 * ar * 1e3, rel=1e-12)


def test_ep_layer_time_is_the_expert_shard_plus_the_attention_difference(monkeypatch) -> None:
    """layer(EP) = P + Q - R: P the experts/ep shard at T' tokens, Q and R the attention shard
    (16-wide dense FFN) at T and T' tokens. phase_time is replaced by a table so the
    composition is what runs."""
    from hetnpu.whatif import llm, parallel_search

    calls = []

    def fake(config, spec, precision, *, phase, batch, seq, kv_len, **kw):
        calls.append((config.experts, config.experts_per_token, config.heads, batch, seq))
        per_layer = 1e-3 * config.experts + 1e-4 * batch + (5e-5 if config.moe else 0.0)
        return llm.PhaseTime(config.layers * per_layer + 0.25, {}, {}, 0.0)

    monkeypatch.setattr(llm, "phase_time", fake)
    parallel_search.layer_time.cache_clear()
    try:
        got = parallel_search.layer_time(MODEL, CHIP, 4, "decode", 16, 1, 1536, 4)
    finally:
        parallel_search.layer_time.cache_clear()
    # 8 experts over 4 ranks: 2 each, both picked; T' = ceil(16 x 2 / (4 x 2)) = 4 tokens.
    assert (2, 2, 8, 4, 1) in calls and (0, 0, 8, 16, 1) in calls and (0, 0, 8, 4, 1) in calls
    p = 2e-3 + 1e-4 * 4 + 5e-5
    q, r = 1e-4 * 16, 1e-4 * 4
    assert got.layer_s == pytest.approx(p + q - r, rel=1e-9)
    assert got.rest_s == pytest.approx(0.25, rel=1e-9)


def test_memory_per_rank_shrinks_as_the_experts_divide() -> None:
    c = load_config(MODEL)
    topo = load_topology("atlas-800i-a2")
    weights = {}
    for ep in (2, 4, 8):
        shard = _shard(MODEL, ep, ep)
        assert shard.experts == c.experts // ep and shard.expert_intermediate == 14336
        mem = memory(shard, 1 << 40, batch=1, prompt=16, generate=16, precision="fp16")
        weights[ep] = mem.weights
        # Expert weights: experts/ep whole experts a layer (gate, up, down), fp16.
        expert = c.layers * (c.experts // ep) * 3 * c.hidden * c.expert_intermediate * 2
        assert mem.weights > expert and mem.weights - expert < 0.2 * expert
    assert weights[2] > 1.9 * weights[4] > 1.9**2 * weights[8]
    points = [step_point(MODEL, CHIP, topo, ep, 1, 16, ep=ep, phases=()) for ep in (4, 8)]
    assert points[0].hbm_per_chip > 1.5 * points[1].hbm_per_chip
    assert not step_point(MODEL, CHIP, topo, 2, 1, 16, ep=2, phases=()).fits  # 52 GB > 32


def test_an_ep_that_does_not_divide_the_experts_is_named() -> None:
    topo = load_topology("atlas-800i-a2")
    c = dataclasses.replace(load_config(MODEL), experts=6)
    with pytest.raises(ScheduleError, match=r"ep=4 does not divide the 6 experts"):
        step_point(c, CHIP, topo, 4, 1, 16, ep=4, phases=())
    with pytest.raises(ScheduleError, match=r"llama-2-7b: ep=2 does not divide the 0 experts"):
        step_point("llama-2-7b", CHIP, topo, 2, 1, 1, ep=2, phases=())
    with pytest.raises(ScheduleError, match=r"ep=2 must equal tp=4"):
        step_point(MODEL, CHIP, topo, 4, 1, 16, ep=2, phases=())
    with pytest.raises(HetnpuError, match=r"ep=3 does not divide the 8 experts"):
        expert_parallel_plan(load(tiny_moe()), _ranks(3))


def test_cli_refuses_a_bad_ep_in_one_line(capsys) -> None:
    assert main(["parallel", "mixtral-8x7b", "--ep", "3", "--batch", "6", "--layers", "1"]) == 2
    err = capsys.readouterr().err
    assert "ep=3 does not divide the 8 experts" in err and err.count("\n") == 1
    assert main(["parallel", "mlp", "--ep", "2"]) == 2
    err = capsys.readouterr().err
    assert "no MoE layer in the even form" in err and err.count("\n") == 1


def test_fewest_on_the_moe_model_tries_ep_and_names_an_answer(tmp_path, capsys) -> None:
    import json

    out_file = tmp_path / "points.json"
    args = ["fewest", "--model", MODEL, "--per-token-ms", "1000", "--batch", "4"]
    assert main([*args, "--prompt", "16", "--generated", "16", "-o", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "fewest: 4 x ascend910b4 (tp 4, pp 1, ep " in out  # 93 GB of weights: 4 x 32 GB
    points = json.loads(out_file.read_text())["points"]
    eps = {(p["tp"], p["ep"]) for p in points}
    assert {(2, 2), (4, 4), (8, 8), (4, 1)} <= eps and (16, 16) not in eps  # 8 experts
    assert all(p["alltoall_ms"] > 0 for p in points if p["ep"] > 1 and p["fits"])


# --- the plan ----------------------------------------------------------------------------


@pytest.mark.parametrize("p", [2, 4])
def test_ep_plan_equals_one_device_bit_for_bit_in_fp32(moe, p: int) -> None:
    with hetnpu.InferenceSession(moe, devices=["sim-npu"], precision="fp32") as sess:
        ref = sess.run(None, _feeds())
    ranks = _ranks(p, "sim-npu")
    with hetnpu.InferenceSession(moe, devices=ranks, precision="fp32", parallel="expert") as sess:
        out = sess.run(None, _feeds())
        plan = sess.get_plan()
    assert {s.device for s in plan.stages} == set(ranks)
    for a, b in zip(out, ref, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("p", "precision", "item"), [(2, "fp16", 2), (4, "fp16", 2), (4, "fp32", 4)]
)
def test_ep_plan_collectives_are_all_to_alls_of_each_ranks_rows(moe, p, precision, item) -> None:
    plan = expert_parallel_plan(load(moe), _ranks(p), precision=precision)
    plan.validate()
    kinds = [c.kind for c in plan.collectives]
    assert kinds == ["all-to-all", "all-to-all", "all-gather"] * 2  # per MoE layer
    tokens = BATCH * SEQ
    for c in plan.collectives:
        if c.kind == "all-to-all":
            # Each rank's buffer: its tokens/p tokens x k choices of hidden, as the NPU holds it.
            assert c.nbytes == tokens // p * K * HIDDEN * item
            assert c.transfers, "rows cross between ranks"
            assert all(
                plan.transfers[k].src_device != plan.transfers[k].dst_device for k in c.transfers
            )
        else:
            assert c.nbytes == tokens * K * HIDDEN * item
    # Rank q runs experts q*E/p .. (q+1)*E/p - 1: its gate weight holds E/p of them.
    sliced = [i for i in plan.graph.model.graph.initializer if "gate_proj.weight@experts" in i.name]
    assert {tuple(i.dims) for i in sliced} == {(8 // p, HIDDEN, 96)}
    assert sorted({i.name.split("@experts")[1] for i in sliced}) == [
        f"{q * 8 // p}-{(q + 1) * 8 // p - 1}" for q in range(p)
    ]


def test_ep_plan_simulates_on_the_hccs_mesh(moe) -> None:
    topo = load_topology("atlas-800i-a2")
    plan = expert_parallel_plan(load(moe), _ranks(4))
    res = simulate_system(plan, CHIP, topology=topo)
    a2a = [c for c in res.collectives if c.kind == "all-to-all"]
    assert len(a2a) == 4 and {c.algorithm for c in a2a} == {"mesh"}
    for c in a2a:  # alone on the links: HCCL's mesh all-to-all time
        assert c.duration_s == pytest.approx(closed_form_s(c.kind, c.ranks, c.nbytes, topo))
        assert any(s.start_s >= c.end_s for s in res.stages)


def test_an_all_to_all_whose_rows_stay_on_their_ranks_is_dropped(capsys) -> None:
    # 4 tokens over 4 ranks, each token's 2 choices on the two experts its own rank holds:
    # no row crosses a link, so the plan has no all-to-all to time, and it simulates.
    assert main(["parallel", "mixtral-8x7b", "--ep", "4", "--batch", "4", "--layers", "1"]) == 0
    out = capsys.readouterr().out
    assert "all-to-all" not in out and "all-gather" in out
