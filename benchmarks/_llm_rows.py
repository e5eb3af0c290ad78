"""The LLM rows of the calibration table, simulated: shared by ``fidelity.py`` and
``calibrate.py``.

ChatGLM3-6B on one NPU of an Atlas 800I A2 is timed by the LLM what-if model
(:func:`hetnpu.whatif.llm.estimate`, prompt 1024, 1024 generated tokens) as the measured
modeling_chatglm.py (Ascend/torchair ``npu_tuned_model/llm/chatglm`` at c731684) runs it:

- ``kv_cache="concat-repeat"``: ``SelfAttention.forward`` grows the cache with ``torch.cat`` and
  then copies its 2 K/V groups to the 32 heads with ``expand(...).contiguous()`` before the
  flash-attention call, every layer and step. The README's last optimisation (with which its
  batch table was measured) keeps Q, K and V in BSND, so no permute copies them again before
  the kernel; the file at that commit still shows the permute.
- ``rope="decomposed"``: its ``apply_rotary_pos_emb`` stays in torch ops (the README's
  optimisations replace attention and RMSNorm only), where the LLaMA script calls the fused
  ``npu_apply_rotary_pos_emb``.
- ``mask="tensor"``: its prompt calls ``npu_prompt_flash_attention`` with the causal mask and
  ``next_tokens=65535``, so the kernel computes every key block and masks it (the LLaMA script
  passes ``next_tokens=0``, and the kernel skips the blocks past the diagonal).
- ``dynamic=True``: it compiles with ``torch.compile(dynamic=True)`` and its cache grows every
  step, so GE runs a dynamic-shape graph whose symbolic ops the host schedules
  (:mod:`hetnpu.whatif.llm_host`). The LLaMA script compiles with ``dynamic=True`` too, but
  marks every decode input static (``torch._dynamo.mark_static`` in ``modeling_llama.py``'s
  ``_mark_model_inputs_static``: "在走动态图模式场景下，实际增量是静态图", in dynamic mode the
  decode graph is in fact static), its cache a fixed-size tensor updated in place; its rows
  are timed as sunk graphs. Its prompt pass is not marked static, but its ops are long enough
  to hide a host's per-op time, and 1284 host-scheduled decode ops at the 910B4 host's
  ``host_op_s`` would take 38.3 ms, above its measured 35.1 ms step at batch 4.

LLaMA-2-70B tensor-parallel over the server's eight NPUs is timed by
:func:`hetnpu.whatif.parallel_search.step_point` (TP 8 on the ``atlas-800i-a2`` topology, two
HCCL all-reduces per layer). Decode rows are the mean step, prefill rows the prompt pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def llm_rows(rows: Iterable[Any], chip: str | None = None) -> list[tuple[Any, float]]:
    """(row, simulated ms) for every LLM row among ``rows``; ``chip`` replaces the server's
    NPU preset (a preset name or a ``.toml`` path; an ``NpuSpec`` for the one-NPU rows only)."""
    from hetnpu.devices.topology import load_topology
    from hetnpu.whatif.llm import estimate
    from hetnpu.whatif.parallel_search import step_point

    topo = load_topology("atlas-800i-a2")
    npu = chip or topo.chip
    out: list[tuple[Any, float]] = []
    runs: dict[int, Any] = {}
    for row in rows:
        if row.unit != "ms" or "torchair" not in row.model:
            continue
        prefill = row.metric.startswith("prefill")
        if "ChatGLM3" in row.model:
            if row.batch not in runs:
                runs[row.batch] = estimate(
                    "chatglm3-6b", npu, batch=row.batch, prompt=1024, generate=1024,
                    kv_cache="concat-repeat", rope="decomposed", mask="tensor", dynamic=True,
                )  # fmt: skip
            e = runs[row.batch]
            out.append((row, (e.ttft_s if prefill else e.mean_token_s) * 1e3))
        elif "LLaMA-2-70B" in row.model:
            p = step_point(
                "llama-2-70b", npu, topo, 8, 1, row.batch, prompt=1024, generated=1024,
                phases=("prefill",) if prefill else ("decode",),
            )  # fmt: skip
            out.append((row, p.ttft_ms if prefill else p.per_token_ms))
    return out
