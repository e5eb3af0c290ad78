"""``hetnpu sweep``: what-if studies over chip parameters, locally or on a Dask cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hetnpu.cli.app import app
from hetnpu.errors import ConfigError


def _study(
    model: str | None,
    chip: str | None,
    study_file: Path | None,
    grid: list[str],
    zipped: list[str],
    fixed: list[str],
) -> Any:
    from hetnpu.whatif.grid import Study, parse_grid_items

    base = Study.from_toml(study_file) if study_file is not None else None
    if base is None and model is None:
        raise ConfigError("sweep: give a MODEL or --study FILE")
    extra_fixed = {
        k: v[0] if len(v) == 1 else v for k, v in parse_grid_items(fixed, "--set").items()
    }
    # Options add to (and override) what the study file says.
    return Study(
        model=model if model is not None else base.model,  # type: ignore[union-attr]
        chip=chip or (base.chip if base is not None else "ascend910"),
        grid={**(base.grid if base else {}), **parse_grid_items(grid)},
        zipped={**(base.zipped if base else {}), **parse_grid_items(zipped, "--zip")},
        fixed={**(base.fixed if base else {}), **extra_fixed},
    )


@app.command()
def sweep(
    model: Annotated[
        str | None,
        typer.Argument(
            help="An .onnx file or a hetnpu.models name, or an LLM: a decoder config.json or a "
            "shipped config (qwen2-7b, ...; see hetnpu llm) (or --study)."
        ),
    ] = None,
    chip: Annotated[
        str | None,
        typer.Option("--chip", help="Base chip preset or TOML file (default: ascend910)."),
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            help="KEY=v1,v2,... varied as a cartesian product (repeatable). KEY: any chip spec "
            "field, batch, shape[.INPUT] (1x3x224x224), precision, double_buffer, strategy, "
            "devices (npu+cpu); for an LLM batch, precision, prompt, generate, kv_cache.",
        ),
    ] = None,
    zipped: Annotated[
        list[str] | None,
        typer.Option("--zip", help="KEY=v1,v2,... varied together with other --zip lists."),
    ] = None,
    fixed: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE held fixed at every point (repeatable)."),
    ] = None,
    study_file: Annotated[
        Path | None, typer.Option("--study", help="A study TOML file (model, chip, grid, zip).")
    ] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder.")] = Path("sweep"),
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Local processes (default: all cores; 1: serial)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="dask.distributed scheduler address, tcp://host:8786."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Reuse the points already finished in -o.")
    ] = False,
) -> None:
    """Simulate a model over a grid of configurations; write results.csv and report.html.

    Exits 2 on a bad key or value (before anything runs) and 1 if any point failed.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from hetnpu.whatif.report import write_report
    from hetnpu.whatif.sweep import prepare, run_study

    study = _study(model, chip, study_file, grid or [], zipped or [], fixed or [])
    prepared = prepare(study)  # every point validated before the bar (or anything) starts
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
    ) as bar:
        task = None

        def progress(done: int, total: int, row: dict | None) -> None:
            nonlocal task
            if task is None:  # resumed points are not counted as speed: start the bar at them
                task = bar.add_task("sweep", total=total, completed=done, last="")
                return
            if row is not None:
                state = "ok" if row["status"] == "ok" else "FAILED"
                bar.update(task, completed=done, last=f"{row['key'][:8]} {state}")

        result = run_study(
            prepared, out, workers=workers, scheduler=scheduler, resume=resume, progress=progress
        )
    write_report(
        out / "report.html",
        result.rows,
        result.params,
        f"hetnpu sweep: {Path(study.model).name} on {Path(study.chip).name}",
    )
    failed = result.failed
    typer.echo(
        f"{len(result.rows) - len(failed)} of {len(result.rows)} points ok "
        f"({result.computed} simulated now, {len(result.rows) - result.computed} reused) "
        f"in {result.wall_s:.1f} s; wrote {out / 'results.csv'} and {out / 'report.html'}"
    )
    for row in failed:
        typer.echo(f"  failed {row['key']}: {row['error']}", err=True)
    if failed:
        raise typer.Exit(1)
