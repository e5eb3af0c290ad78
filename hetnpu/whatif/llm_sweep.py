"""``hetnpu sweep`` over an LLM: its points resolved into tasks, and one point's metrics.

A sweep whose model is a decoder ``config.json`` (or a shipped config name) varies the request
(``batch``, ``prompt``, ``generate``, ``precision``, and the graph's form: ``kv_cache``,
``rope``, ``mask``) and any chip field; each
point is one :func:`hetnpu.whatif.llm.estimate`. Its row's ``latency_s`` is the whole request
(TTFT plus every decode step) and ``throughput_per_s`` the generated tokens per second, so the
sweep's report and Pareto fronts read as for any model; ``ttft_s``, ``mean_token_s``,
``memory_bytes``, ``fits`` and ``max_batch`` are added columns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from hetnpu.devices.presets import load_npu
from hetnpu.errors import ConfigError
from hetnpu.models.decoder import load_config
from hetnpu.whatif.llm import PRECISIONS

__all__ = ["LLM_RUN_KEYS", "prepare_points", "sweep_metrics"]

LLM_RUN_KEYS = ("batch", "precision", "prompt", "generate", "kv_cache", "rope", "mask")
"""Run parameters an LLM point takes (the others describe ONNX inputs or partitioning)."""

DEFAULTS = {
    "batch": 1, "precision": "fp16", "prompt": 1024, "generate": 128, "kv_cache": "inplace",
    "rope": "fused", "mask": "is_causal",
}  # fmt: skip


def prepare_points(
    study: Any, ref: Any, points: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str], list[Any], list[float]]:
    """(points, keys, tasks, cost) of an LLM study, every point validated (see
    :func:`hetnpu.whatif.sweep.prepare`)."""
    from hetnpu.whatif.grid import is_run_key, normalise_run_value, point_key
    from hetnpu.whatif.worker import Task

    config = load_config(ref.source)
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()
    base = load_npu(study.chip)
    specs: dict[str, Any] = {}
    keys, tasks, cost = [], [], []
    for i, point in enumerate(points):
        where = f"sweep point {i + 1} of {len(points)}"
        try:
            run = {
                k: v if k == "precision" else normalise_run_value(k, v)
                for k, v in point.items()
                if is_run_key(k)
            }
            if "precision" in run and run["precision"] not in PRECISIONS:
                raise ConfigError(
                    f"precision {run['precision']!r}: an LLM runs in {', '.join(PRECISIONS)}"
                )
            other = next((k for k in run if k not in LLM_RUN_KEYS), None)
            if other:
                raise ConfigError(f"{other}: does not apply to an LLM (its keys: "
                                  f"{', '.join(LLM_RUN_KEYS)})")  # fmt: skip
            overrides = {k: v for k, v in point.items() if not is_run_key(k)}
            memo = repr(sorted(overrides.items()))
            if memo not in specs:
                specs[memo] = load_npu(study.chip, overrides) if overrides else base
            spec = specs[memo]
            params = {**DEFAULTS, **run}
            context = params["prompt"] + params["generate"]
            if context > config.max_positions:
                raise ConfigError(
                    f"prompt + generate = {context} tokens exceeds {config.name}'s "
                    f"{config.max_positions} positions (max_position_embeddings)"
                )
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        llm = tuple((k, params[k]) for k in ("generate", "kv_cache", "mask", "prompt", "rope"))
        tasks.append(
            Task(model=ref, spec=spec, shapes=None, precision=params["precision"],
                 batch=params["batch"], llm=llm)
        )  # fmt: skip
        keys.append(point_key(digest, spec.model_dump_json(), params))
        points[i] = {**point, **run}
        cost.append(spec.ai_cores / base.ai_cores + spec.hbm_bytes_per_s / base.hbm_bytes_per_s)
    return points, keys, tasks, cost


def sweep_metrics(
    model: str, spec: Any, batch: int, precision: str, llm: Sequence[tuple[str, Any]]
) -> dict[str, Any]:
    """One LLM point's row: the request's latency and throughput, TTFT, decode, memory."""
    from hetnpu.whatif.llm import estimate

    params: Mapping[str, Any] = dict(llm)
    e = estimate(
        model, spec, batch=batch, precision=precision, prompt=params["prompt"],
        generate=params["generate"], kv_cache=params["kv_cache"], rope=params["rope"],
        mask=params["mask"],
    )  # fmt: skip
    latency = e.ttft_s + e.decode_s
    bound = e.decode.bound.get("matmul") or e.prefill.bound.get("matmul", "")
    return {
        "cycles": round(latency * spec.clock_hz),
        "latency_s": latency,
        "throughput_per_s": e.tokens_per_s,
        "bound": bound,
        "ttft_s": e.ttft_s,
        "mean_token_s": e.mean_token_s,
        "memory_bytes": e.memory.total,
        "fits": e.memory.fits,
        "max_batch": e.memory.max_batch,
        "sim_wall_s": e.wall_s,
    }
