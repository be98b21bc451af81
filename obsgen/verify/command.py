"""The ``obsgen verify`` command (click), registered on the ``obsgen`` group in obsgen/cli.py.

Exit codes: 0 every signal found and fit for use, 1 findings; the group turns invalid specs and usage, and a
server unreachable or refusing (:class:`~obsgen.errors.UsageError`), into one line and exit 2, and anything else
into 70 or 130. Kept to argument handling: the checks are imported when the command runs.
"""

from __future__ import annotations

import sys
import time

import click
from click.core import ParameterSource

EXIT_FINDINGS = 1
LOOKBACK = "1h"


@click.command("verify")
@click.argument("specs", nargs=-1, required=True, type=click.Path(), metavar="SPEC_OR_DIR...")
@click.option("--prometheus", "url", metavar="URL",
              help="A Prometheus-compatible query API: Prometheus, Thanos Query, Mimir's https://…/prometheus.")
@click.option("--metrics", "expositions", multiple=True, metavar="FILE_OR_URL",
              help="Exposition text instead of a server: a saved /metrics scrape, or a URL scraped once. "
                   "Repeatable. The labels a scrape adds (job, instance, the service selector's) count as present.")
@click.option("--at", "at_text", metavar="TIME", show_default="now", help="When to look: RFC 3339 or Unix seconds.")
@click.option("--lookback", default=LOOKBACK, show_default=True, metavar="DURATION",
              help="How far before --at a series counts as seen (one that vanished since is reported).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: one finding per line, then a summary; json: the documented document (docs/verify.md).")
@click.option("--bearer-token-file", metavar="FILE", help="Send the token in FILE as `Authorization: Bearer`.")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="An extra HTTP header (X-Scope-OrgID for Mimir); repeatable.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS",
              help="Longest wait for any one answer (a server that never answers is an error, not a hang).")
@click.option("--environment", metavar="NAME",
              help="For specs with `environments:`: the environment the server or scrape belongs to (its values "
                   "are checked). Specs without environments are checked as they are.")
@click.pass_context
def verify(ctx: click.Context, specs: tuple[str, ...], url: str | None, expositions: tuple[str, ...],
           at_text: str | None, lookback: str, fmt: str, bearer_token_file: str | None,
           headers: tuple[str, ...], timeout: float, environment: str | None) -> int:
    """Check SPECs (files or directories) against what the services expose: every metric, label, type,
    histogram bucket and window their alerts and dashboards read."""
    from obsgen.verify.web import client

    lookback_given = ctx.get_parameter_source("lookback") is not ParameterSource.DEFAULT
    return _run(specs, url, expositions, at_text, lookback if lookback_given else None, fmt,
                client(bearer_token_file, headers, timeout), environment)


def _run(specs, url, expositions, at_text, lookback_given, fmt, http, environment) -> int:
    from obsgen.console import echo
    from obsgen.errors import UsageError
    from obsgen.fleet import Progress
    from obsgen.verify import report
    from obsgen.verify.run import verify as check

    if bool(url) == bool(expositions):
        raise UsageError("give either --prometheus URL or --metrics FILE_OR_URL (not both)")
    if expositions and (at_text or lookback_given):
        raise UsageError("--at and --lookback apply to --prometheus; an exposition text is one moment")
    lookback = lookback_given or LOOKBACK
    seconds = _lookback_seconds(lookback)
    at = _time(at_text) if at_text else time.time()
    loaded = [_in(spec, environment) for spec in _load(specs)]

    def inventory_for(metric_names: set[str]):
        if url:
            from obsgen.verify import prometheus

            return prometheus.inventory(url, http, metric_names, at, seconds)
        from obsgen.verify import exposition

        return exposition.inventory([exposition.read(source, http) for source in expositions], metric_names)

    bar = Progress(len(loaded), sys.stderr, "verifying")
    try:
        result = check(loaded, inventory_for, lookback=lookback, at=_rfc3339(at) if url else None,
                       advance=bar.advance)
    finally:
        bar.close()
    render = report.as_json if fmt == "json" else report.text
    echo(render(result.findings, result.checked), nl=False)
    return 0 if result.clean else EXIT_FINDINGS


def _load(specs: tuple[str, ...]) -> list:
    """Every spec, reporting every problem of every file before giving up."""
    from obsgen.console import spec_files
    from obsgen.errors import SpecError
    from obsgen.spec import load

    loaded, problems = [], []
    for path in spec_files(specs):
        try:
            loaded.append(load(path))
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems)
    return loaded


def _in(spec, environment: str | None):
    """``spec`` as it is in ``environment``: one server serves one environment, whose values are the ones to check."""
    from obsgen.errors import UsageError

    names = [name for name, _ in spec.environments]
    if not names:
        return spec
    listed = ", ".join(names)
    if environment is None:
        raise UsageError(f"{spec.file}: the spec has environments ({listed}); say which one the server serves "
                         "with --environment NAME")
    if environment not in names:
        raise UsageError(f"{spec.file}: the spec has no environment `{environment}` (it has {listed}); "
                         "give one of them to --environment")
    return spec.environment(environment)


def _lookback_seconds(lookback: str) -> float:
    from obsgen.errors import UsageError
    from obsgen.model.types import Duration

    try:
        seconds = Duration.parse(lookback).total_seconds
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise UsageError(f"--lookback {lookback!r}: expected a Prometheus duration such as 1h, 30m or 2d")
    return seconds


def _time(text: str) -> float:
    """RFC 3339 (with its offset) or Unix seconds."""
    from datetime import datetime

    from obsgen.errors import UsageError

    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UsageError(f"--at {text!r}: expected RFC 3339 with a time zone (2026-01-31T12:00:00Z) or Unix seconds")
    return moment.timestamp()


def _rfc3339(at: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
