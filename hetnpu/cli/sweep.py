"""``hetnpu sweep``: what-if studies over chip parameters, locally or on a Dask cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hetnpu.cli.app import app
from hetnpu.errors import ConfigError


@app.command()
def sweep(
    model: Annotated[Path | None, typer.Argument(help="An .onnx file (or give --study).")] = None,
    chip: Annotated[
        str, typer.Option("--chip", help="Base chip preset or TOML file.")
    ] = "ascend910",
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", help="KEY=v1,v2,... varied as a cartesian product (repeatable)."),
    ] = None,
    zipped: Annotated[
        list[str] | None,
        typer.Option(
            "--zip", help="KEY=v1,v2,... varied together with other --zip lists (repeatable)."
        ),
    ] = None,
    fixed: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE held fixed at every point (repeatable)."),
    ] = None,
    study_file: Annotated[Path | None, typer.Option("--study", help="A study TOML file.")] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder.")] = Path("sweep"),
    workers: Annotated[
        int | None, typer.Option("--workers", help="Local processes (default: all cores).")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="dask.distributed scheduler address, tcp://host:8786."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Reuse the points already finished in -o.")
    ] = False,
) -> None:
    """Simulate a model over a grid of chip configurations; write results.csv and report.html."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from hetnpu import chips
    from hetnpu.whatif.grid import Study, parse_grid_items
    from hetnpu.whatif.report import write_report
    from hetnpu.whatif.sweep import run_study

    if study_file is not None:
        study = Study.from_toml(study_file)
    elif model is not None:
        fixed_values = {k: v[0] for k, v in parse_grid_items(fixed or [], "--set").items()}
        study = Study(
            model=str(model),
            chip=chip,
            grid=parse_grid_items(grid or []),
            zipped=parse_grid_items(zipped or [], "--zip"),
            fixed=fixed_values,
        )
    else:
        raise ConfigError("sweep: give a MODEL or --study FILE")
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("sweep", total=None, last="")

        def progress(done: int, total: int, row: dict) -> None:
            status = "ok" if row["status"] == "ok" else "FAILED"
            bar.update(task, completed=done, total=total, last=f"{row['key'][:8]} {status}")

        result = run_study(
            study, out, workers=workers, scheduler=scheduler, resume=resume, progress=progress
        )
    params = list(dict.fromkeys(k for p in study.points() for k in p))
    base = chips.load(study.chip)
    write_report(
        out / "report.html",
        result.rows,
        params,
        {"ai_cores": base.ai_cores, "hbm_bytes_per_s": base.hbm_bytes_per_s},
        f"hetnpu sweep: {Path(study.model).name} on {study.chip}",
    )
    ok = len(result.rows) - len(result.failed)
    print(
        f"{ok} of {len(result.rows)} points ok ({result.computed} simulated now, "
        f"{len(result.rows) - result.computed} reused) in {result.wall_s:.1f} s; "
        f"wrote {out / 'results.csv'} and {out / 'report.html'}"
    )
    for row in result.failed:
        print(f"  failed {row['key']}: {row['error']}")
