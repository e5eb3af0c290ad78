"""``hetnpu run``: execute a model across devices and save or summarise its outputs."""

from __future__ import annotations

import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from hetnpu.atomic import atomic_open
from hetnpu.cli.app import app
from hetnpu.cli.options import InputShapeOpt, StrategyOpt, parse_input_shapes
from hetnpu.devices.names import CPU
from hetnpu.errors import InputError

_NP_TYPE = {
    "float": "float32",
    "double": "float64",
    "float16": "float16",
    "bool": "bool",
}


def parse_inputs(items: list[str] | None) -> dict[str, np.ndarray]:
    """``NAME=file.npy`` items (``.npz`` with one array also works) into arrays.

    Raises
    ------
    InputError
        A malformed item, or a file that is missing or not a numpy array.
    """
    feeds: dict[str, np.ndarray] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--input {item!r}: expected NAME=file.npy")
        try:
            loaded = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise InputError(f"--input {name}: no file {path!r}") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"--input {name}: {path!r} is not a .npy/.npz array ({exc})") from None
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                keys = list(loaded.keys())
                if len(keys) != 1:
                    raise InputError(
                        f"--input {name}: {path!r} holds {len(keys)} arrays; expected one"
                    )
                loaded = loaded[keys[0]]
        feeds[name] = loaded
    return feeds


def random_inputs(args: list[Any], given: dict[str, np.ndarray], seed: int) -> dict[str, str]:
    """Fill ``given`` with seeded random arrays for the inputs it lacks; return what was made.

    Floats are standard normal; integers are 0 or 1 (valid as token ids, masks and indices of
    any table); symbolic dims are 1.
    """
    rng = np.random.default_rng(seed)
    made: dict[str, str] = {}
    for arg in args:
        if arg.name in given:
            continue
        shape = tuple(d if isinstance(d, int) else 1 for d in arg.shape)
        kind = arg.type.removeprefix("tensor(").removesuffix(")")
        dtype = np.dtype(_NP_TYPE.get(kind, kind))
        if dtype.kind == "f":
            value = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            value = rng.integers(0, 2, shape).astype(bool)
        else:
            value = rng.integers(0, 2, shape).astype(dtype)
        given[arg.name] = value
        made[arg.name] = f"{list(shape)} {dtype}"
    return made


def write_npz(path: Path, names: list[str], values: list[np.ndarray]) -> None:
    """Save outputs by name as one .npz, atomically (never a truncated file at ``path``)."""
    with atomic_open(path, "wb") as f:
        np.savez(f, **dict(zip(names, values, strict=True)))


@app.command()
def run(
    model: Annotated[str, typer.Argument(help="An .onnx file (or a hetnpu.models name).")],
    devices: Annotated[
        str, typer.Option("--devices", help="Devices by preference, e.g. sim-npu,cpu.")
    ] = CPU,
    strategy: StrategyOpt = "capability",
    precision: Annotated[
        str,
        typer.Option(
            "--precision", help="NPU precision: fp16 or fp32 (ATC must_keep_origin_dtype)."
        ),
    ] = "fp16",
    input_: Annotated[
        list[str] | None,
        typer.Option("--input", help="NAME=file.npy (repeatable); missing inputs are random."),
    ] = None,
    input_shape: InputShapeOpt = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the outputs as .npz.")
    ] = None,
    profile: Annotated[
        Path | None, typer.Option("--profile", help="Write the measured Chrome trace.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="An fp16 overflow on the NPU is an error.")
    ] = False,
    no_fallback: Annotated[
        bool, typer.Option("--no-fallback", help="An unavailable device is an error.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random inputs.")] = 0,
) -> None:
    """Run MODEL on DEVICES (as onnxruntime would, partitioned) and summarise the outputs."""
    from hetnpu import models
    from hetnpu.runtime.session import InferenceSession

    feeds = parse_inputs(input_)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        sess = InferenceSession(
            models.source(model),
            devices=devices,
            strategy=strategy,
            precision=precision,
            strict=strict,
            fallback=not no_fallback,
            profile=profile is not None,
            input_shapes=parse_input_shapes(input_shape),
        )
        made = random_inputs(sess.get_inputs(), feeds, seed)
        # Checked before the random inputs are announced: a refused run says nothing else.
        checked = sess._check_inputs(feeds)
        for name, what in made.items():
            typer.echo(f"input {name}: random {what} (seed {seed}); pass --input {name}=FILE.npy")
        # A model with symbolic dims is planned for the shapes fed: before the clock starts.
        sess._compiled({n: v.shape for n, v in checked.items()})
        t1 = time.perf_counter()
        outs = sess.run(None, feeds)
        t2 = time.perf_counter()
    for w in caught:
        if isinstance(w.message, Warning) and not issubclass(w.category, DeprecationWarning):
            typer.echo(f"hetnpu: warning: {w.message}", err=True)
    names = [o.name for o in sess.get_outputs()]
    for name, value in zip(names, outs, strict=True):
        typer.echo(f"output {name}: shape {list(value.shape)} {value.dtype}")
    plan = sess.get_plan()
    counts = Counter(plan.assignment.values())
    moves = sum(t.src_device != t.dst_device for t in plan.transfers)
    typer.echo(
        "devices: "
        + ", ".join(f"{d} {counts[d]} nodes" for d in sess.get_providers() if counts[d])
        + f" in {len(plan.stages)} stage(s), {moves} cross-device transfer(s), "
        f"{len(plan.transdata)} TransData"
    )
    typer.echo(f"wall time: run {(t2 - t1) * 1e3:.3f} ms (plan and compile {(t1 - t0):.3f} s)")
    if output is not None:
        try:
            write_npz(output, names, outs)
        except OSError as exc:
            raise InputError(f"-o {output}: cannot write ({exc.strerror})") from None
        typer.echo(f"wrote {output}")
    if profile is not None:
        try:
            sess.end_profiling(profile)
        except OSError as exc:
            raise InputError(f"--profile {profile}: cannot write ({exc.strerror})") from None
        typer.echo(f"wrote {profile}")
