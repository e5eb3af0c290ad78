"""``hetnpu devices``: the device kinds and presets; ``devices show``: one spec in full."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hetnpu.cli.app import app
from hetnpu.devices.names import CPU, DESCRIPTIONS, NPU
from hetnpu.errors import ConfigError

__all__ = ["devices_app"]

devices_app = typer.Typer(
    help="Device kinds and chip presets; `devices show NAME|FILE` prints one spec in full."
)
app.add_typer(devices_app, name="devices", invoke_without_command=True)

SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a parameter by its key, KEY=VALUE (repeatable)."),
]


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


def _binary(value: float) -> str:
    for scale, prefix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= scale:
            return f"{value / scale:.4g} {prefix}"
    return f"{value:.0f} B"


def parse_set_items(items: list[str] | None) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` → ``{KEY: "VALUE"}``; the spec parses the values."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _summary(preset: Any) -> list[str]:
    """Name, kind/architecture, cores, clock, peak fp16, memory bandwidth of one preset."""
    spec = preset.spec
    if preset.kind == NPU:
        if spec.architecture == "split":
            cores = f"{spec.ai_cores} AIC + {spec.vector_cores} AIV"
        else:
            cores = f"{spec.ai_cores} AI" + (
                f" + {spec.vector_cores} vec" if spec.vector_cores else ""
            )
        kind, peak, bw = f"npu/{spec.architecture}", spec.peak_flops("fp16"), spec.hbm_bytes_per_s
    else:
        cores = f"{spec.cores} cores" if preset.kind == CPU else f"{spec.sms} SMs"
        kind, peak, bw = preset.kind, spec.peak_fp16_flops, spec.mem_bytes_per_s
    return [
        spec.name,
        kind,
        cores,
        _si(spec.clock_hz, "Hz"),
        _si(peak, "FLOP/s"),
        _si(bw, "B/s"),
    ]


_SHORT = {"bytes/s": "B/s", "FLOP/s": "FLOP/s", "OP/s": "OP/s", "Hz": "Hz"}


@devices_app.callback()
def devices(ctx: typer.Context) -> None:
    """List the device kinds and every preset, one line each."""
    if ctx.invoked_subcommand is not None:
        return
    from hetnpu.devices import presets

    print("device kinds (devices=[...] of a session, --devices of a command):")
    for kind, what in DESCRIPTIONS.items():
        print(f"  {kind:<8} {what}")
    rows = [_summary(presets.load_preset(name)) for name in presets.names()]
    header = ["preset", "kind", "cores", "clock", "peak fp16", "memory BW"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("presets (details: hetnpu devices show NAME):")
    for row in [header, *rows]:
        print(
            "  " + "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=True)).rstrip()
        )


def _value(key: str, value: Any) -> str:
    from hetnpu.devices.spec import unit_of

    unit = unit_of(key)
    if value is None:
        return "-"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, bool | str):
        return str(value)
    if unit == "bytes":
        return f"{value:,} ({_binary(value)})"
    if unit in _SHORT:
        return f"{value:.10g} ({_si(value, _SHORT[unit])})"
    if unit == "s":
        return f"{value:g} ({value * 1e6:g} us)"
    return f"{value:,}" if isinstance(value, int) else f"{value:.10g}"


@devices_app.command("show")
def show(
    name_or_path: Annotated[str, typer.Argument(help="A preset name or a .toml file.")],
    set_: SetOpt = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the validated spec as JSON instead.")
    ] = False,
) -> None:
    """Print every parameter of a device spec with its value, unit and source."""
    from hetnpu.devices import presets
    from hetnpu.devices.spec import unit_of

    preset = presets.load_preset(name_or_path, parse_set_items(set_) or None)
    spec = preset.spec
    if json_out:
        print(spec.model_dump_json(indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{escape(preset.label)}[/bold]: {preset.kind}, {spec.description}")
    dumped = spec.model_dump()
    rows: list[tuple[str, Any, str | None]] = []
    for key, field in type(spec).model_fields.items():
        nested = getattr(spec, key)
        if isinstance(dumped[key], dict):  # a nested spec (host_link): one row per inner key
            for inner, sub in type(nested).model_fields.items():
                rows.append((f"{key}.{inner}", dumped[key][inner], sub.description))
        else:
            rows.append((key, dumped[key], field.description))
    # Keys are what users type in --set: never wrapped or cut; the long text wraps instead.
    table = Table()
    table.add_column("parameter", no_wrap=True)
    table.add_column("value", max_width=16)
    table.add_column("unit", no_wrap=True)
    table.add_column("meaning / source", overflow="fold")
    for key, value, description in rows:
        source = preset.sources.get(key, "")
        table.add_row(
            key,
            _value(key, value),
            unit_of(key),
            f"[dim]{escape(description or '')}[/dim]" + (f"\n{escape(source)}" if source else ""),
        )
    console.print(table)
    if preset.kind == NPU:
        peaks = ", ".join(
            f"{d} {_si(spec.peak_flops(d), 'OP/s')}" for d in ("fp16", "int8", "fp32")
        )
        console.print(f"derived peak (cores x M*K*N x 2 x clock): {peaks}")
