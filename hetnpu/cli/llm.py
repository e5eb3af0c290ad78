"""``hetnpu llm``: time to first token, decode latency and memory fit of an LLM on one NPU."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hetnpu.cli.app import app
from hetnpu.cli.simulate import parse_sets
from hetnpu.errors import ConfigError

_SWEEPABLE = ("batch", "prompt", "generate", "chip", "precision", "kv_cache", "rope", "mask")


def _sweep_axes(items: list[str] | None) -> dict[str, list[Any]]:
    """``KEY=V1,V2,...`` axes: request sizes, chip, precision, or any preset key."""
    axes: dict[str, list[Any]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ConfigError(f"--sweep {item!r}: expected KEY=V1,V2,...")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        axes[key] = [parse_sets([f"{key}={v}"])[key] for v in values]
    return axes


def _run(point: dict[str, Any], base: dict[str, Any], sets: dict[str, Any]) -> Any:
    from hetnpu.whatif.llm import estimate

    args = {**base, **{k: v for k, v in point.items() if k in _SWEEPABLE}}
    overrides = {**sets, **{k: v for k, v in point.items() if k not in _SWEEPABLE}}
    model = args.pop("model")
    return estimate(model, args.pop("chip"), overrides=overrides or None, **args)


@app.command()
def llm(
    model: Annotated[
        str,
        typer.Argument(
            help="A shipped config (qwen2-7b, llama-3-8b, chatglm3-6b, ...) or a config.json path."
        ),
    ],
    chip: Annotated[
        str | None, typer.Option(help="NPU preset or TOML path (default ascend910b4).")
    ] = None,
    batch: Annotated[int, typer.Option(help="Sequences per batch.")] = 1,
    prompt: Annotated[int, typer.Option(help="Prompt tokens per sequence.")] = 1024,
    generate: Annotated[int, typer.Option(help="Tokens generated per sequence.")] = 128,
    precision: Annotated[str, typer.Option(help="fp16, bf16 or fp32.")] = "fp16",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Chip override KEY=VALUE.")
    ] = None,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            help="Sweep axis KEY=V1,V2 (batch, prompt, generate, chip, precision or a preset "
            "key such as hbm_bytes_per_s); repeat for a grid."
        ),
    ] = None,
    kv_cache: Annotated[
        str,
        typer.Option(
            help="inplace (kernel appends to a preallocated cache), concat (the "
            "cache is copied every step, as torch.cat in HF modeling code) or concat-repeat "
            "(also K/V copied per query head, as HF's repeat_kv)."
        ),
    ] = "inplace",
    rope: Annotated[
        str,
        typer.Option(
            help="fused (the RotaryEmbedding kernel) or decomposed (basic ops, as modeling "
            "code that keeps its Python RoPE)."
        ),
    ] = "fused",
    mask: Annotated[
        str,
        typer.Option(
            help="is_causal (the prompt's flash attention skips the key blocks past the "
            "diagonal) or tensor (it gets the causal mask as a tensor and computes every "
            "block, as a prompt flash attention with next_tokens=65535)."
        ),
    ] = "is_causal",
    dynamic: Annotated[
        bool,
        typer.Option(
            help="The graphs were compiled with symbolic shapes (torch.compile(dynamic=True), "
            "a cache grown every step): the ops whose shapes vary are host-scheduled, at the "
            "chip's host_op_s each (default: the whole graph sinks to the device)."
        ),
    ] = False,
    full: Annotated[
        bool, typer.Option(help="Simulate every layer, sequence and step (slow).")
    ] = False,
    require_fit: Annotated[
        bool, typer.Option(help="Fail (exit 2) when the request does not fit HBM.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    trace: Annotated[
        Path | None, typer.Option(help="Write a Chrome trace of one decode step.")
    ] = None,
) -> None:
    """TTFT, per-token decode latency, tokens/s, memory and op bounds of a decoder LLM."""
    from hetnpu.whatif.llm import default_chip

    base = {"model": model, "chip": chip or default_chip(), "batch": batch, "prompt": prompt,
            "generate": generate, "precision": precision, "replay": not full,
            "require_fit": require_fit, "kv_cache": kv_cache, "rope": rope,
            "mask": mask, "dynamic": dynamic}  # fmt: skip
    sets = parse_sets(set_)
    axes = _sweep_axes(sweep)
    points = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    results = [(p, _run(p, base, sets)) for p in (points or [{}])]
    if trace is not None:  # of the first point, with its chip, KV cache and preset keys
        first = results[0][0]
        _write_trace(
            trace,
            results[0][1],
            {**base, **{k: v for k, v in first.items() if k in _SWEEPABLE}},
            {**sets, **{k: v for k, v in first.items() if k not in _SWEEPABLE}},
        )
    if as_json:
        out = [dict(r.to_dict(), point=p) for p, r in results]
        typer.echo(json.dumps(out if axes else out[0], indent=2, default=str))
        return
    console = Console()
    if axes:
        _sweep_table(console, results, list(axes))
    else:
        _report(console, results[0][1])


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def _report(console: Console, e: Any) -> None:
    console.print(
        f"[bold]{e.model}[/] on {e.chip} ({e.precision}), batch {e.batch}, prompt {e.prompt}, "
        f"{e.generate} generated"
    )
    g = e.graph
    console.print(
        f"  graph: KV cache {g['kv_cache']}, RoPE {g['rope']}, prompt mask {g['mask']}, "
        f"shapes {g['shapes']}"
    )
    console.print(f"  TTFT (prefill)       {e.ttft_s * 1e3:10.2f} ms")
    console.print(f"  decode per token     {e.mean_token_s * 1e3:10.2f} ms (mean)")
    for kv, s in e.per_token_s:
        console.print(f"    at KV length {kv:>7}  {s * 1e3:10.3f} ms")
    console.print(f"  tokens/s (batch)     {e.tokens_per_s:10.1f}")
    m = e.memory
    verdict = "fits" if m.fits else "DOES NOT FIT"
    console.print(
        f"  memory {_gib(m.total)} of {_gib(m.capacity)} ({verdict}): weights {_gib(m.weights)}, "
        f"KV cache {_gib(m.kv_cache)}, activations {_gib(m.activations)}, workspace "
        f"{_gib(m.workspace)}"
    )
    console.print(
        f"  largest batch at this context: {m.max_batch}; largest context at this batch: "
        f"{m.max_context}"
    )
    table = Table(title="time by op class")
    for col in ("class", "prefill ms", "bound", "decode step ms", "bound"):
        table.add_column(col)
    for cls in sorted(set(e.prefill.by_class) | set(e.decode.by_class)):
        table.add_row(
            cls,
            f"{e.prefill.by_class.get(cls, 0.0) * 1e3:.3f}",
            e.prefill.bound.get(cls, ""),
            f"{e.decode.by_class.get(cls, 0.0) * 1e3:.3f}",
            e.decode.bound.get(cls, ""),
        )
    console.print(table)
    console.print(f"  simulated in {e.wall_s:.1f} s")


def _sweep_table(
    console: Console, results: list[tuple[dict[str, Any], Any]], keys: list[str]
) -> None:
    table = Table(title="LLM sweep")
    for col in (*keys, "TTFT ms", "ms/token", "tokens/s", "memory GiB", "fits"):
        table.add_column(col)
    for point, e in results:
        table.add_row(
            *(str(point[k]) for k in keys),
            f"{e.ttft_s * 1e3:.2f}",
            f"{e.mean_token_s * 1e3:.3f}",
            f"{e.tokens_per_s:.1f}",
            f"{e.memory.total / 2**30:.2f}",
            "yes" if e.memory.fits else "no",
        )
    console.print(table)


def _write_trace(path: Path, e: Any, base: dict[str, Any], sets: dict[str, Any]) -> None:
    """A Chrome trace of the two-layer decode step at the longest sampled KV length."""
    from hetnpu.devices.presets import load_npu
    from hetnpu.models.decoder import build_decoder
    from hetnpu.simulator import simulate
    from hetnpu.simulator.frontend import torch_frontend
    from hetnpu.traces import write_trace
    from hetnpu.whatif.llm import PRECISIONS

    kv = e.per_token_s[-1][0] if e.per_token_s else e.prompt
    graph = build_decoder(base["model"], "decode", batch=e.batch, kv_len=kv, layers=2,
                          weights="absent", kv_cache=base["kv_cache"],
                          rope=base["rope"])  # fmt: skip
    with torch_frontend():
        res = simulate(graph, load_npu(base["chip"], sets or None),
                       precision=PRECISIONS[e.precision], trace_level="op")  # fmt: skip
    write_trace(res, path)  # atomically
