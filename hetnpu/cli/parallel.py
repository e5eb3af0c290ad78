"""``hetnpu topologies``, ``hetnpu parallel`` and ``hetnpu fewest``: multi-NPU systems, a
model's tensor-, expert- or pipeline-parallel plan simulated on one, and the fewest NPUs that meet a
latency or throughput target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hetnpu.atomic import atomic_write_text
from hetnpu.cli.app import app
from hetnpu.errors import ConfigError

_FEWEST_EXAMPLES = """
Examples:

  hetnpu fewest --model llama-2-70b --chip ascend910b4 --per-token-ms 50 --batch 16

  hetnpu fewest --model llama-3-8b --ttft-ms 400 --batch 4 --workers 2

  hetnpu fewest --model mixtral-8x7b --chip ascend910b4 --per-token-ms 50 --batch 16

The exit status is 1 when no configuration meets the target (the points are still printed and
written), so a script can tell.
"""

_PARALLEL_EXAMPLES = """
Examples:

  hetnpu parallel model.onnx --tp 4 --topology atlas-800i-a2 --trace tp4.json

  hetnpu parallel resnet50 --pp 4 --topology atlas-800i-a2

  hetnpu parallel mixtral-8x7b --ep 8 --batch 16 --trace ep8.json
"""


@app.command()
def topologies() -> None:
    """List the multi-NPU topology presets: NPUs, levels and links."""
    from hetnpu.devices.topology import list_topologies, load_topology

    for name in list_topologies():
        t = load_topology(name)
        typer.echo(f"{name}: {t.description} (chip {t.chip}, {t.devices} NPUs, family {t.family})")
        for line in t.describe():
            typer.echo(f"  {line}")


@app.command(epilog=_PARALLEL_EXAMPLES)
def parallel(
    model: Annotated[str, typer.Argument(help="An .onnx file or a hetnpu.models name.")],
    tp: Annotated[int, typer.Option("--tp", min=1, help="Tensor-parallel ranks.")] = 1,
    pp: Annotated[int, typer.Option("--pp", min=1, help="Pipeline stages (CNNs, layers).")] = 1,
    topology: Annotated[
        str, typer.Option("--topology", help="Topology preset or TOML file.")
    ] = "atlas-800i-a2",
    chip: Annotated[
        str | None, typer.Option("--chip", help="NPU preset (default: the topology's).")
    ] = None,
    precision: Annotated[str, typer.Option("--precision", help="fp16 or fp32.")] = "fp16",
    trace: Annotated[
        Path | None, typer.Option("--trace", help="Write the system trace (Chrome JSON) here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse a --tp that leaves an op or heads unsplit.")
    ] = False,
    ep: Annotated[int, typer.Option("--ep", min=1, help="Expert-parallel ranks (MoE models).")] = 1,
    layers: Annotated[
        int, typer.Option("--layers", min=1, help="Layers of a decoder config to build.")
    ] = 2,
    batch: Annotated[
        int, typer.Option("--batch", min=1, help="Sequences of a decoder config's step.")
    ] = 16,
) -> None:
    """Simulate MODEL split over NPUs of a topology, with its collectives on the links.

    MODEL may be a decoder config (a shipped name or a config.json): one decode step of its
    first --layers layers at --batch sequences and a 1024-token cache is built without
    weights, at opset 18 as ATC parses it (decomposed attention; MoE layers in the even form
    that --ep splits).
    """
    from hetnpu.devices.topology import load_topology
    from hetnpu.scheduler.parallel import (
        expert_parallel_plan,
        pipeline_plan,
        tensor_parallel_plan,
    )
    from hetnpu.simulator.system import simulate_system

    degrees = [d for d in (tp, pp, ep) if d > 1]
    if len(degrees) != 1:
        raise ConfigError("give one of --tp N or --pp N, or --ep N for an MoE model (N >= 2)")
    (n,) = degrees
    topo = load_topology(topology)
    ranks = topo.device_names()[:n]
    if len(ranks) < n:
        raise ConfigError(f"topology {topo.name!r} has {topo.devices} NPUs, fewer than {n}")
    graph = _graph(model, layers, batch)
    chip = chip or topo.chip
    if tp > 1:
        plan = tensor_parallel_plan(graph, ranks, precision=precision, strict=strict)
    elif ep > 1:
        plan = expert_parallel_plan(graph, ranks, precision=precision)
    else:
        plan = pipeline_plan(graph, ranks, chip=chip, precision=precision)
    res = simulate_system(plan, chip, topology=topo, precision=precision)
    if trace is not None:
        from hetnpu.traces.system import write_system_trace

        write_system_trace(res, trace)
    summary = res.to_summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
        return
    typer.echo(f"{plan.strategy} on {topo.name} ({chip}): makespan {res.makespan_s * 1e3:.3f} ms")
    typer.echo(f"  stages: {len(res.stages)}, collectives: {len(res.collectives)}")
    if pp > 1:
        # Batches in flight one per stage: a new one leaves every slowest-stage time.
        slowest = max(s.end_s - s.start_s for s in res.stages)
        typer.echo(f"  pipelined: one batch every {slowest * 1e3:.3f} ms (slowest stage)")
    for c in res.collectives:
        us = c.duration_s * 1e6
        typer.echo(f"  {c.kind:<10} {c.algorithm:<8} {c.nbytes:>10} B  {us:9.2f} us  {c.name}")
    if trace is not None:
        typer.echo(f"trace: {trace}")


def _graph(model: str, layers: int, batch: int) -> Any:
    """The loaded graph of an .onnx file, a model-zoo name or a decoder config."""
    from hetnpu.whatif.worker import load_graph, resolve_model

    ref = resolve_model(model)
    if ref.kind != "llm":
        return load_graph(ref, None)
    from hetnpu.graph import load
    from hetnpu.models.decoder import build_decoder

    step = build_decoder(
        ref.source, "decode", batch=batch, kv_len=1024, layers=layers, weights="absent",
        moe="even", attention="decomposed",
    )  # fmt: skip
    return load(step)


def _is_moe(model: str) -> bool:
    from hetnpu.models.decoder.config import load_config

    return load_config(model).moe


def _family_chip(family: str) -> str:
    """The NPU preset the topology presets of ``family`` hold."""
    from hetnpu.devices.topology import list_topologies, load_topology

    chips = sorted({t.chip for t in map(load_topology, list_topologies()) if t.family == family})
    if len(chips) != 1:
        found = ", ".join(chips) or "none"
        raise ConfigError(f"--family {family}: its topologies hold {found}; give --chip")
    return chips[0]


@app.command(epilog=_FEWEST_EXAMPLES)
def fewest(
    model: Annotated[str, typer.Option("--model", help="A decoder config name or config.json.")],
    batch: Annotated[int, typer.Option("--batch", min=1, help="Sequences in a batch.")],
    chip: Annotated[
        str | None,
        typer.Option("--chip", help="NPU preset (default: the one the family's servers hold)."),
    ] = None,
    per_token_ms: Annotated[
        float | None, typer.Option("--per-token-ms", help="Target: decode latency per token.")
    ] = None,
    ttft_ms: Annotated[
        float | None, typer.Option("--ttft-ms", help="Target: time to first token (prefill).")
    ] = None,
    tokens_per_s: Annotated[
        float | None, typer.Option("--tokens-per-s", help="Target: decode tokens/s at --batch.")
    ] = None,
    family: Annotated[str, typer.Option("--family", help="Topology family: a2 or a3.")] = "a2",
    prompt: Annotated[int, typer.Option("--prompt", min=1, help="Prompt tokens.")] = 1024,
    generated: Annotated[int, typer.Option("--generated", min=1, help="Tokens generated.")] = 1024,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Local processes for the simulations.")
    ] = 1,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="dask.distributed scheduler address.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Write all points as JSON.")
    ] = None,
) -> None:
    """The fewest NPUs (TP x PP, x EP for an MoE model) that serve MODEL within a target, and
    the points around it."""
    from hetnpu.whatif.parallel_search import fewest_chips

    given = {
        k: v
        for k, v in (
            ("per_token_ms", per_token_ms),
            ("ttft_ms", ttft_ms),
            ("tokens_per_s", tokens_per_s),
        )
        if v is not None
    }
    if len(given) != 1:
        raise ConfigError("give exactly one target: --per-token-ms, --ttft-ms or --tokens-per-s")
    ((target, value),) = given.items()
    if chip is None:
        chip = _family_chip(family)
    res = fewest_chips(
        model,
        chip,
        target,
        value,
        batch,
        family=family,
        prompt=prompt,
        generated=generated,
        workers=workers,
        scheduler=scheduler,
    )
    typer.echo(f"{model} on {chip} ({family}), batch {batch}, {target} target {value:g}:")
    typer.echo(
        f"  {'chips':>5} {'tp':>3} {'pp':>3} {'ep':>3} {'GB/chip':>8} {'ms/token':>9} "
        f"{'tok/s':>8}  topology"
    )
    for p in res.points:
        mark = "*" if p == res.answer else " "
        split = f"{p.chips:>5} {p.tp:>3} {p.pp:>3} {p.ep:>3} {p.hbm_per_chip / 1e9:8.1f}"
        if not p.fits:
            typer.echo(f"{mark} {split}  {p.note}")
            continue
        typer.echo(
            f"{mark} {split} {p.per_token_ms:9.2f} {p.tokens_per_s:8.1f}  {p.topology} {p.note}"
        )
    if res.answer is None:
        typer.echo("no configuration meets the target")
    else:
        a = res.answer
        # An MoE model's answer names its expert-parallel degree (1: experts split by TP).
        ep = f", ep {a.ep}" if a.ep > 1 or _is_moe(model) else ""
        typer.echo(f"fewest: {a.chips} x {chip} (tp {a.tp}, pp {a.pp}{ep}) on {a.topology}")
    typer.echo(f"search wall time: {res.wall_s:.1f} s")
    if out is not None:
        rows = [{**vars(p), "tokens_per_s": p.tokens_per_s} for p in res.points]
        atomic_write_text(
            out,
            json.dumps(
                {"answer": None if res.answer is None else vars(res.answer), "points": rows},
                indent=1,
            ),
        )
    if res.answer is None:
        raise typer.Exit(1)
