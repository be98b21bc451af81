"""What every command shares: printing reports, and the spec files named on the command line.

Its own module so that commands living in their own packages (``obsgen diff``, ``obsgen verify``) use them
without importing the command line that registers them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import click


def echo(message: str, *, err: bool = False, nl: bool = True) -> None:
    """Print as written: generated text quoted in a report keeps every byte (click would strip ANSI codes)."""
    click.echo(message, err=err, nl=nl, color=True)


def spec_files(inputs: Iterable[str], *, exclude: Path | None = None) -> list[Path]:
    """Files as given; directories expand to every ``*.yaml``/``*.yml`` below them, sorted.

    A file named twice counts once; files under ``exclude`` (the output directory) are not specs.
    """
    from obsgen.errors import UsageError

    out: list[Path] = []
    seen: set[str] = set()
    skip = os.path.abspath(exclude) + os.sep if exclude is not None else None
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            found = [p for p in found if not (skip and os.path.abspath(p).startswith(skip))]
        elif path.is_file():
            found = [path]
        else:
            raise UsageError(f"{raw}: no such file or directory")
        for p in found:
            if (key := os.path.abspath(p)) not in seen:
                seen.add(key)
                out.append(p)
    if not out:
        raise UsageError("no spec files found in " + ", ".join(inputs))
    return out
