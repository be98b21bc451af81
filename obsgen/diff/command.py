"""``obsgen diff``: the command (registered on the ``obsgen`` group in obsgen/cli.py).

Kept to argument handling: the comparison lives in the rest of the package, imported when the command
runs (every ``obsgen`` run imports this module).
"""

from __future__ import annotations

import click

FORMATS = ("markdown", "text", "json")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(), metavar="OLD NEW | --base GIT_REF [SPEC_OR_DIR]...")
@click.option("--base", metavar="GIT_REF",
              help="Build SPEC_OR_DIRs (default: specs) as they are at GIT_REF and in the work tree, then compare.")
@click.option("--base-code", is_flag=True,
              help="With --base: build the GIT_REF side with the obsgen source at GIT_REF (obsgen/), for reviewing "
                   "a change to obsgen itself. Default: both sides with the running obsgen.")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="markdown: one pull-request comment, starting with <!-- obsgen-diff -->; json: the documented "
                   "contract (docs/gitops.md).")
@click.option("--fail-on", type=click.Choice(("risk", "change")),
              help="Exit 1 when a risk flag is raised (risk) or when anything changed (change).")
@click.option("--prometheus", metavar="URL",
              help="For each changed alert, how often the old and the new rule would have fired on this "
                   "Prometheus's data over --lookback.")
@click.option("--lookback", default="7d", show_default=True, metavar="DURATION",
              help="With --prometheus: how far back to evaluate.")
@click.option("--at", metavar="TIME", help="With --prometheus: end of the lookback (RFC 3339 or Unix seconds; "
                                           "default now).")
def diff(paths: tuple[str, ...], base: str | None, base_code: bool, fmt: str, fail_on: str | None,
         prometheus: str | None, lookback: str, at: str | None) -> int:
    """Review what a change does to alerting: compare two build outputs OLD and NEW, or the build of GIT_REF
    with the work tree's (--base).

    Reports alerts added, removed, renamed or changed (threshold looser or stricter, for, severity, labels,
    annotations, receiver), recordings removed while still read, dashboard panels, SLO error budgets and
    inhibitions, with risk flags first. Exit 0, or 1 when --fail-on matches; 2 for invalid input.
    """
    from obsgen.console import echo
    from obsgen.diff.compare import compare
    from obsgen.diff.render import render

    window = _window(prometheus, lookback, at)
    report = compare(*_sides(paths, base, base_code))
    if prometheus and window:
        from obsgen.diff import backtest

        backtest.run(report, prometheus, window)
    echo(render(report, fmt), nl=False)
    return 1 if fail_on == "risk" and report.risks or fail_on == "change" and report.changed else 0


def _sides(paths: tuple[str, ...], base: str | None, base_code: bool):
    """The two outputs: the directories given, or the builds of GIT_REF and of the work tree."""
    from pathlib import Path

    from obsgen.diff import outputs

    if base is None:
        if base_code:
            raise click.UsageError("--base-code needs --base GIT_REF")
        if len(paths) != 2:
            raise click.UsageError("give OLD and NEW (two output directories of `obsgen build`), or --base GIT_REF")
        return tuple(outputs.load(Path(p), label=p) for p in paths)
    import tempfile

    from obsgen.console import echo
    from obsgen.diff.base import BuildFailed, build_sides

    with tempfile.TemporaryDirectory(prefix="obsgen-diff-") as work:
        try:
            return build_sides(base, list(paths) or ["specs"], base_code=base_code, workdir=Path(work))
        except BuildFailed as exc:  # the build's own report (file:line:col problems), then which side failed
            echo(exc.stderr, err=True, nl=False)
            echo(f"obsgen: diff: {exc}", err=True)
            raise click.exceptions.Exit(exc.code if exc.code in (2, 70, 74, 130) else 70) from None


def _window(prometheus: str | None, lookback: str, at: str | None):
    """The backtest window, checked before anything is built."""
    if prometheus:
        from obsgen.diff.backtest import Window

        return Window.of(lookback, _time(at))
    if at is not None:
        raise click.UsageError("--at needs --prometheus URL")
    return None


def _time(text: str | None) -> float:
    """Unix seconds from ``--at`` (RFC 3339 or Unix seconds; now when absent)."""
    import time
    from datetime import datetime, timezone

    if text is None:
        return time.time()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither RFC 3339 nor Unix seconds", param_hint="'--at'") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()
