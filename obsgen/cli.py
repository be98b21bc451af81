"""Command line: ``obsgen build``, ``obsgen validate``, ``obsgen schema``.

Exit codes: 0 ok, 1 ``--check`` found differences, 2 invalid input (spec
problems, bad paths, files obsgen refuses to overwrite), 70 internal error.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import click

from obsgen.errors import Problem, SpecError, UsageError

EXIT_DIFF, EXIT_INVALID, EXIT_INTERNAL = 1, 2, 70


def spec_files(inputs: Iterable[str]) -> list[Path]:
    """Files as given; directories expand to every ``*.yaml``/``*.yml`` below them, sorted."""
    out: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            out.append(path)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    if not out:
        raise UsageError("no spec files found in " + ", ".join(inputs))
    return out


def load_all(paths: list[Path]):
    """Load every spec, reporting every problem of every file before giving up."""
    from obsgen.spec import load

    specs, problems = [], []
    for path in paths:
        try:
            specs.append(load(path))
        except SpecError as exc:
            problems += exc.problems
    first: dict[str, str] = {}
    for spec in specs:
        name = spec.service.name
        if name in first:
            problems.append(Problem(spec.file, *spec.name_at, ("service", "name"),
                                    f"service `{name}` is also defined in {first[name]}; service names must be unique"))
        first.setdefault(name, spec.file)
    if problems:
        raise SpecError(problems)
    return specs


def _run(action) -> None:
    try:
        action()
    except SpecError as exc:
        click.echo(str(exc), err=True)
        n = len(exc.problems)
        click.echo(f"obsgen: {n} problem{'s' if n != 1 else ''} found", err=True)
        sys.exit(EXIT_INVALID)
    except UsageError as exc:
        click.echo(f"obsgen: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    except KeyboardInterrupt:
        click.echo("obsgen: interrupted; nothing was changed", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a clean report
        if os.environ.get("OBSGEN_DEBUG"):
            raise
        click.echo(f"obsgen: internal error: {type(exc).__name__}: {exc}\n"
                   "This is a bug in obsgen; set OBSGEN_DEBUG=1 for a traceback and report it.", err=True)
        sys.exit(EXIT_INTERNAL)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Observability as code: Prometheus rules, promtool tests, dashboards and runbooks from a service spec."""


@main.command()
@click.argument("specs", nargs=-1, required=True)
@click.option("--out", "out", default="generated", show_default=True, help="Output directory.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the output directory is not what the specs produce.")
def build(specs: tuple[str, ...], out: str, check: bool) -> None:
    """Build every SPEC (files or directories) into OUT/<service>/."""

    def action() -> None:
        from obsgen import pipeline, writer

        loaded = load_all(spec_files(specs))
        root = Path(out)
        p = writer.plan(root, {s.service.name: pipeline.render(s) for s in loaded})
        if check:
            _report(p)
            sys.exit(0 if p.clean else EXIT_DIFF)
        if p.conflicts:
            raise UsageError("refusing to overwrite files obsgen did not write: " + ", ".join(
                str(root / c) for c in p.conflicts) + "; move them away or delete them")
        writer.apply(p)
        touched = len(p.changed) + len(p.missing) + len(p.orphaned)
        click.echo(f"obsgen: {len(loaded)} service(s) built into {root}/ ({touched} file(s) changed)", err=True)

    _run(action)


def _report(p) -> None:
    for label, paths in (("changed", p.changed), ("missing", p.missing), ("orphaned", p.orphaned)):
        for path in paths:
            click.echo(f"{label}: {p.root / path}")
    if p.changed:
        click.echo(p.diff(), nl=False)
    if p.clean:
        click.echo(f"obsgen: {p.root}/ is up to date", err=True)
    else:
        click.echo(f"obsgen: {p.root}/ differs from the specs; run `obsgen build` and commit the result", err=True)


@main.command()
@click.argument("specs", nargs=-1, required=True)
def validate(specs: tuple[str, ...]) -> None:
    """Check SPECs (files or directories) without writing anything."""

    def action() -> None:
        loaded = load_all(spec_files(specs))
        click.echo(f"obsgen: {len(loaded)} spec(s) valid", err=True)

    _run(action)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the spec (for editors: yaml-language-server)."""
    from obsgen.spec.schema import schema as load_schema

    click.echo(json.dumps(load_schema(), indent=2, ensure_ascii=False))
