"""Command line (click): ``obsgen build``, ``validate``, ``schema``, ``diff``, ``verify``, ``init``.

Exit codes are a contract (docs/outputs.md, "Exit codes"): 0 ok, 1 findings (``build --check`` found differences,
``diff --fail-on`` matched, ``verify`` found problems), 2 invalid input (spec problems, bad paths, usage
errors as click reports them, a server verify cannot use), 70 internal error (a bug), 74 the output could
not be written, 130 interrupted (nothing was changed).

Adding a command: one function decorated with ``@obsgen.command()``, here or in its own module registered
with ``obsgen.add_command`` at the end of this file. It returns its exit code (``None`` for 0) and raises
:class:`obsgen.errors.SpecError` / :class:`obsgen.errors.UsageError` for the user's mistakes; the group
turns every failure into one line and its exit code once, in :func:`guarded`. Import heavy libraries
(jsonschema, grafanalib, jinja2, the pipeline) inside the function: every run imports this module, and a
no-change build (what a pre-commit hook runs) has 0.15 s in all.

An option of ``build`` that changes what is generated must also be listed in ``RENDER_OPTIONS``: its value
is passed to ``pipeline.render`` as a keyword and enters the fingerprint that decides whether an unchanged
spec can be skipped (obsgen/fleet.py).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click
from click.core import ParameterSource

from obsgen.console import echo, spec_files

EXIT_FINDINGS, EXIT_INVALID, EXIT_INTERNAL, EXIT_IO, EXIT_INTERRUPTED = 1, 2, 70, 74, 130

# `build` options that change the output (passed to pipeline.render, part of the fingerprint).
RENDER_OPTIONS: tuple[str, ...] = ("time_scale",)

# At exit, Python's finalization runs a full garbage collection over every object still alive (a build's modules,
# its spec, rendered text): 50-60 ms of CPU after a cold build of maple, a quarter of obsgen's own time, to free
# memory the process is about to hand back anyway. Frozen objects are not traversed (they are still freed by
# reference counting as modules are torn down). Every file obsgen writes is closed by then (`with` blocks), and
# Python never promised finalizers of objects alive at exit.
atexit.register(gc.freeze)


def guarded(action: Callable[[], int | None]) -> int:
    """Run a command, turning every failure into a message and an exit code (never a traceback).

    click's own exceptions (usage errors, ``--help``, exits) pass through: click reports them itself.
    """
    try:
        return action() or 0
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except KeyboardInterrupt:
        echo("obsgen: interrupted; nothing was changed", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that turns failures into a clean report
        return _report_failure(exc)


def _report_failure(exc: Exception) -> int:
    from obsgen.errors import SpecError, UsageError
    from obsgen.writer import RollbackError

    if isinstance(exc, SpecError):
        echo(str(exc), err=True)
        n = len(exc.problems)
        echo(f"obsgen: {n} problem{'s' if n != 1 else ''} found", err=True)
        return EXIT_INVALID
    if isinstance(exc, UsageError):
        echo(f"obsgen: {exc}", err=True)
        return EXIT_INVALID
    if os.environ.get("OBSGEN_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, RollbackError):
        echo(f"obsgen: {exc}", err=True)
        return EXIT_INTERNAL
    if isinstance(exc, OSError):
        echo(f"obsgen: {exc}; nothing was changed", err=True)
        return EXIT_IO
    echo(f"obsgen: internal error: {type(exc).__name__}: {exc}\n"
         "This is a bug in obsgen; set OBSGEN_DEBUG=1 for a traceback and report it.", err=True)
    return EXIT_INTERNAL


class _Obsgen(click.Group):
    """The ``obsgen`` group: every command runs under :func:`guarded`, and its return value is the exit code."""

    def invoke(self, ctx: click.Context) -> None:
        ctx.exit(guarded(lambda: super(_Obsgen, self).invoke(ctx)))


@click.group(cls=_Obsgen, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="obsgen", prog_name="obsgen")
def obsgen() -> None:
    """Observability as code: Prometheus rules, promtool tests, dashboards and runbooks from a service spec."""


main = obsgen  # the console script (pyproject.toml) and what tests drive through click.testing.CliRunner


# --------------------------------------------------------------------------- commands

_specs_argument = click.argument("specs", nargs=-1, required=True, type=click.Path())
_jobs_option = click.option("-j", "--jobs", type=click.IntRange(min=1), metavar="N",
                            show_default="the number of CPUs", help="Specs handled in parallel.")


@obsgen.command()
@_specs_argument
@click.option("-o", "--out", type=click.Path(), default="generated", show_default=True, help="Output directory.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if the output directory is not what the specs produce.")
@_jobs_option
@click.option("--time-scale", type=click.FloatRange(min=1), metavar="N",
              help="For end-to-end tests only: divide every alert `for`/`keep_firing_for` and every PromQL range "
                   "window, subquery and offset by N (whole seconds, at least 1s); names, thresholds and "
                   "annotations stay as shipped. Writes no promtool tests (they assume real durations). Needs an "
                   "explicit --out.")
@click.pass_context
def build(ctx: click.Context, specs: tuple[str, ...], out: str, check: bool, jobs: int | None,
          time_scale: float | None) -> int:
    """Build every SPEC (files or directories) into OUT/<service>/ (OUT/<service>/<environment>/ for each
    environment of a spec with `environments:`)."""
    from obsgen import fleet
    from obsgen.errors import UsageError

    if time_scale and ctx.get_parameter_source("out") is ParameterSource.DEFAULT:
        raise UsageError("--time-scale writes test-only rules; give an explicit --out (not the committed output)")
    root = Path(out)
    result = fleet.build(spec_files(specs, exclude=root), root, inputs=specs, check=check,
                         jobs=jobs or fleet.default_jobs(), options={k: ctx.params[k] for k in RENDER_OPTIONS},
                         progress=sys.stderr)
    _report_warnings(result.warnings)
    plan = result.plan
    if check:
        _report_check(plan)
        return 0 if plan.clean else EXIT_FINDINGS
    touched = len(plan.changed) + len(plan.missing) + len(plan.orphaned)
    echo(f"obsgen: {result.services} service(s) built into {root}/ ({touched} file(s) changed)", err=True)
    return 0


def _report_warnings(warnings) -> None:
    """What builds but will not work where it is used: on stderr, never in the exit code."""
    for w in warnings:
        echo(str(w), err=True)


def _report_check(plan) -> None:
    for label, paths in (("changed", plan.changed), ("missing", plan.missing), ("orphaned", plan.orphaned)):
        for path in paths:
            echo(f"{label}: {plan.root / path}")
    if plan.changed:
        echo(plan.diff(), nl=False)
    if plan.clean:
        echo(f"obsgen: {plan.root}/ is up to date", err=True)
    else:
        echo(f"obsgen: {plan.root}/ differs from the specs; run `obsgen build` and commit the result", err=True)


@obsgen.command()
@_specs_argument
@_jobs_option
def validate(specs: tuple[str, ...], jobs: int | None) -> int:
    """Check SPECs (files or directories) without writing anything."""
    from obsgen import fleet

    n, warnings = fleet.validate(spec_files(specs), jobs=jobs or fleet.default_jobs(), progress=sys.stderr)
    _report_warnings(warnings)
    echo(f"obsgen: {n} spec(s) valid", err=True)
    return 0


@obsgen.command()
def schema() -> int:
    """Print the JSON Schema of the spec.

    For editors: yaml-language-server reads it (``# yaml-language-server: $schema=...``).
    """
    import json

    from obsgen.spec.schema import schema as load_schema

    echo(json.dumps(load_schema(), indent=2, ensure_ascii=False))
    return 0


# --------------------------------------------------------------------------- commands in their own modules

from obsgen.diff.command import diff  # noqa: E402 - registered after the group exists
from obsgen.init.command import init  # noqa: E402
from obsgen.verify.command import verify  # noqa: E402

obsgen.add_command(diff)
obsgen.add_command(init)
obsgen.add_command(verify)
