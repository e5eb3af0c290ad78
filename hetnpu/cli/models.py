"""``hetnpu models``: list the built-in networks and export one as an ONNX file."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from hetnpu.atomic import atomic_write_bytes
from hetnpu.cli.app import app
from hetnpu.errors import ConfigError

__all__ = ["models_app"]

models_app = typer.Typer(
    help="The model zoo (CNNs, BERT, CRNN, YOLOv4, an MLP: `hetnpu models list`), seeded weights.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

# protobuf cannot serialise a message of 2 GiB or more.
PROTOBUF_LIMIT = 2**31 - 1


def _human_bytes(n: float) -> str:
    for scale, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


@models_app.command("list")
def list_models() -> None:
    """Print each model: name, parameters, description."""
    from hetnpu import models

    width = max(map(len, models.MODELS))
    for name in models.MODELS:
        params = models.param_count(name)
        print(f"{name:<{width}}  {params:>11,} params  {models.DESCRIPTIONS[name]}")


@models_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Model name (see `hetnpu models list`).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The .onnx file to write.")],
    batch: Annotated[int | None, typer.Option("--batch", min=1, help="Batch size.")] = None,
    seq_len: Annotated[
        int | None,
        typer.Option("--seq-len", min=1, help="Sequence length (bert_base, bert_squad)."),
    ] = None,
    image_size: Annotated[
        int | None,
        typer.Option("--image-size", min=1, help="Image height and width (image models)."),
    ] = None,
    dynamic_batch: Annotated[
        bool, typer.Option("--dynamic-batch", help="Make dim 0 the symbolic 'batch'.")
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the weights.")] = None,
) -> None:
    """Build model NAME with seeded random weights and write it to an ONNX file."""
    from hetnpu import models
    from hetnpu.models import count_params

    builder = models.get(name)
    given: dict[str, Any] = {
        "batch": batch,
        "seq_len": seq_len,
        "image_size": image_size,
        "dynamic_batch": dynamic_batch or None,
        "seed": seed,
    }
    accepted = inspect.signature(builder).parameters
    kwargs: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:
            continue
        if key not in accepted:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"{flag} does not apply to model {name!r}")
        kwargs[key] = value
    model = builder(**kwargs)
    if model.ByteSize() > PROTOBUF_LIMIT:
        raise ConfigError(f"model {name!r} is over protobuf's 2 GiB limit; choose smaller sizes")
    data = model.SerializeToString()
    atomic_write_bytes(output, data)
    print(f"{output}: {name}, {count_params(model):,} parameters, {_human_bytes(len(data))}")
