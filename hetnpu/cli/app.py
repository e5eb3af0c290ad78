"""The typer application every command module attaches to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="hetnpu",
    help="Run, partition and simulate ONNX models on CPU, GPU and Ascend NPUs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
