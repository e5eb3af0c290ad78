"""Options and parsers shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

from hetnpu.errors import InputError

InputShapeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input-shape",
        help="Bind an input's shape, NAME=d0,d1,... (repeatable); fixes symbolic dims.",
    ),
]


StrategyOpt = Annotated[
    str, typer.Option("--strategy", help="capability, affinity, heft or exact.")
]


def parse_input_shapes(items: list[str] | None) -> dict[str, list[int]] | None:
    """Parse ``NAME=d0,d1,...`` items into a mapping; ``None`` when none were given."""
    if not items:
        return None
    shapes: dict[str, list[int]] = {}
    for item in items:
        name, sep, dims = item.rpartition("=")
        if not sep or not name:
            raise InputError(f"--input-shape {item!r}: expected NAME=d0,d1,...")
        try:
            shapes[name] = [int(d) for d in dims.split(",") if d.strip()]
        except ValueError:
            raise InputError(f"--input-shape {item!r}: dims must be integers") from None
    return shapes
