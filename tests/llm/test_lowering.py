"""The fused transformer kernels as the simulator times them, against closed forms."""

from __future__ import annotations

import pytest

from hetnpu.devices.presets import load_npu
from hetnpu.graph import load
from hetnpu.graph.cost_transformer import attention_work
from hetnpu.models.decoder import build_decoder, load_config
from hetnpu.simulator import simulate
from hetnpu.simulator.frontend import torch_frontend

from .conftest import tiny_config

CHIP = "ascend910b4"
GROUPED = tiny_config(
    hidden_size=1024, intermediate_size=2048, num_attention_heads=8, num_key_value_heads=2,
    num_hidden_layers=1, vocab_size=1024, max_position_embeddings=8192,
)  # fmt: skip


def _run(model, **kw):
    with torch_frontend():
        return simulate(model, CHIP, **kw)


def _op(res, op_type):
    return next(o for o in res.ops if o.op_type == op_type)


def test_both_forms_are_timed_and_flash_attention_beats_the_decomposed_scores():
    times = {}
    for form in ("fused", "decomposed"):
        res = _run(build_decoder(GROUPED, "prefill", seq=2048, weights="absent", attention=form))
        assert not res.unsupported
        times[form] = sum(o.cycles for o in res.ops if "/self_attn/" in o.name)
    # The decomposed form writes and reads back 8 heads x 2048² scores; the fused one does not.
    assert times["fused"] < times["decomposed"]


def test_outside_the_torch_front_end_opset_23_ops_are_refused_as_atc_would():
    res = simulate(build_decoder(GROUPED, "decode", kv_len=16, weights="absent"), CHIP)
    assert any(u.op_type == "Attention" for u in res.unsupported)


@pytest.mark.parametrize("batch", [1, 8])
def test_decode_attention_reads_the_cache_once_per_kv_head_at_hbm_speed(batch):
    kv_len = 4096
    res = _run(build_decoder(GROUPED, "decode", batch=batch, kv_len=kv_len, weights="absent"))
    op = _op(res, "Attention")
    c = load_config(GROUPED)
    cache = 2 * batch * c.kv_heads * kv_len * c.head_dim * 2  # K and V in fp16
    # Grouped heads share their K/V: the cache crosses HBM once, not heads/kv_heads times.
    assert cache <= op.hbm_bytes < 1.1 * cache
    spec = load_npu(CHIP)
    floor = cache / spec.hbm_bytes_per_s * spec.clock_hz
    assert floor <= op.cycles < 2.0 * floor


def _repeat_runs(batch, kv_len):
    return {
        form: _run(build_decoder(GROUPED, "decode", batch=batch, kv_len=kv_len,
                                 weights="absent", kv_cache=form))
        for form in ("concat", "concat-repeat")
    }  # fmt: skip


def test_repeated_kv_heads_cost_the_copy_and_a_read_per_query_head():
    batch, kv_len = 1, 1024
    c = load_config(GROUPED)
    cache = batch * c.kv_heads * (kv_len + 1) * c.head_dim * 2  # K (or V) in fp16
    res = _repeat_runs(batch, kv_len)
    copies = [o for o in res["concat-repeat"].ops if o.op_type == "Expand"]
    # K and V each read once and written once per query head of their group.
    assert [o.gm_bytes for o in copies] == [cache * (1 + c.groups)] * 2
    read = {form: _op(r, "Attention").gm_bytes for form, r in res.items()}
    # The attention then reads K and V per query head: groups times the shared cache.
    assert read["concat-repeat"] == pytest.approx(c.groups * read["concat"], rel=0.01)


def test_a_repeated_cache_beyond_l2_costs_its_traffic_at_hbm_speed():
    # 16 sequences of 4097 cached tokens: each copy (4 x 33.6 MB for K, as much for V) is
    # larger than the 910B4's 96 MB L2, so the copies and their reads stream from HBM.
    batch, kv_len = 16, 4096
    c = load_config(GROUPED)
    cache = batch * c.kv_heads * (kv_len + 1) * c.head_dim * 2
    res = _repeat_runs(batch, kv_len)
    extra = res["concat-repeat"].cycles - res["concat"].cycles
    spec = load_npu(CHIP)
    # K and V: the copy's read and groups writes, then groups - 1 more reads by the attention.
    moved = 2 * cache * (1 + c.groups + c.groups - 1)
    floor = moved / spec.hbm_bytes_per_s * spec.clock_hz
    assert floor <= extra < 1.5 * floor


def test_a_prompt_given_its_mask_as_a_tensor_computes_the_whole_square():
    # The kernel cannot know a mask tensor's pattern (CANN's sparse_mode 0 with next_tokens
    # past the keys): every key block is computed and masked, so exactly the square.
    seq = 2048
    res = _run(build_decoder(GROUPED, "prefill", seq=seq, weights="absent", mask="tensor"))
    c = load_config(GROUPED)
    square = 2 * c.heads * seq * seq * c.head_dim
    op = _op(res, "Attention")
    assert op.macs == square
    # The square at the Cube's rate over every core, plus the pipeline's fill and drain, and
    # what it waits for of the ops before it, which a longer launch hides more of
    # (1.13x the bound at a 10.2 us launch, 1.22x at 3.5 us).
    spec = load_npu(CHIP)
    bound = square / (16 * 16 * 16 * spec.ai_cores)
    assert bound < op.cycles - op.launch_cycles < 1.25 * bound
    causal = _op(_run(build_decoder(GROUPED, "prefill", seq=seq, weights="absent")), "Attention")
    assert causal.cycles < 0.8 * op.cycles  # an even count of blocks per core: 0.85
    # The roofline's count agrees with the lowering's.
    graph = load(build_decoder(GROUPED, "prefill", seq=seq, weights="absent", mask="tensor"))
    node = next(n for n in graph.nodes.values() if n.op_type == "Attention")
    assert attention_work(graph, node)[0] == square


def test_prompt_blocks_are_dealt_to_the_cores_by_weight():
    from hetnpu.simulator.lowering.attention import _balanced_runs
    from hetnpu.simulator.tiler import split_even

    # Two causal groups of 64 query blocks: block k weighs its k + 1 key blocks.
    weights = [k + 1 for k in range(64)] * 2
    runs = _balanced_runs(weights, 20)
    assert sum(runs) == len(weights) and len(runs) <= 20 and min(runs) > 0

    def busiest(counts):
        loads, at = [], 0
        for n in counts:
            loads.append(sum(weights[at : at + n]))
            at += n
        return max(loads) / (sum(weights) / 20)

    assert busiest(runs) < 1.15  # within 15 % of an even share
    assert busiest(split_even(len(weights), 20)) > 1.5  # an even count is far off
    # Equal weights: never a core more loaded than an even count would make it.
    for n, cores in [(5, 20), (20, 20), (32, 20), (128, 20), (199, 40)]:
        runs = _balanced_runs([1] * n, cores)
        assert sum(runs) == n and max(runs) == -(-n // cores)
    assert _balanced_runs([], 20) == []


def test_causal_prefill_attention_does_about_half_the_square():
    seq = 2048
    res = _run(build_decoder(GROUPED, "prefill", seq=seq, weights="absent"))
    c = load_config(GROUPED)
    square = 2 * c.heads * seq * seq * c.head_dim  # QKᵀ and PV over every key
    # Query blocks of 128 rows (4 tokens x ... grouped heads) skip the blocks past the diagonal:
    # a little over half the square.
    assert 0.5 * square <= _op(res, "Attention").macs <= 0.56 * square
