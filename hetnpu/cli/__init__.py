"""The ``hetnpu`` command line.

One module per command group attaches its commands to :data:`hetnpu.cli.app.app`; the list
of those modules below is the one place that wires them in. :func:`main` turns a
:class:`~hetnpu.errors.HetnpuError` into one line on stderr, capped at
:data:`~hetnpu.errors.MESSAGE_MAX_CHARS` characters, and exit code 2 (``HETNPU_DEBUG=1`` shows
the traceback and the whole message instead).
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from hetnpu.cli import (  # noqa: F401  (each attaches its commands)
    devices,
    info,
    llm,
    models,
    parallel,
    partition,
    run,
    simulate,
    sweep,
    traces,
)
from hetnpu.cli.app import app
from hetnpu.errors import HetnpuError, capped


def _exception_classes(name: str) -> tuple[type[BaseException], ...]:
    # Recent typer releases carry their own copy of click (``typer._click``) and define Exit and
    # Abort themselves; older ones use click's. Usage errors may come from any of them.
    found: list[type[BaseException]] = []
    for module_name in ("typer.exceptions", "typer._click.exceptions", "click.exceptions"):
        try:
            module: ModuleType = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


_EXIT = _exception_classes("Exit")
_ABORT = _exception_classes("Abort")
_CLICK_ERROR = _exception_classes("ClickException")

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hetnpu`` console script."""
    try:
        # Without standalone mode, click returns a raised Exit's code instead of exiting.
        rc = app(args=argv, prog_name="hetnpu", standalone_mode=False)
    except HetnpuError as exc:
        if os.environ.get("HETNPU_DEBUG") == "1":
            raise
        print(f"hetnpu: error: {capped(str(exc))}", file=sys.stderr)
        return 2
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _ABORT:
        print("hetnpu: aborted", file=sys.stderr)
        return 130
    except _CLICK_ERROR as exc:
        exc.show()
        return 2
    except KeyboardInterrupt:
        print("hetnpu: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # A file the user named cannot be read or written (a directory that is not there or
        # not writable, a full disk): one line, as for any other bad input.
        if os.environ.get("HETNPU_DEBUG") == "1":
            raise
        where = f": {exc.filename}" if exc.filename else ""
        print(f"hetnpu: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    if rc == 130:  # Ctrl-C: typer turns it into this status without a word
        print("hetnpu: interrupted", file=sys.stderr)
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
