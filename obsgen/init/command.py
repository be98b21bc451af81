"""The ``obsgen init`` command (click), registered on the ``obsgen`` group in obsgen/cli.py.

Exit codes: 0 the spec was written; 2 (through the group, one line) invalid input, a source that cannot be
read or reached, nothing recognised, or an output file that exists without ``--force``.
"""

from __future__ import annotations

import click

LOOKBACK_S = 3600.0  # the draft's own check against a Prometheus looks back as far as `obsgen verify`'s default


@click.command("init")
@click.option("--metrics", "expositions", multiple=True, metavar="FILE_OR_URL",
              help="A saved /metrics scrape, or a URL scraped once; repeatable (the app and its Redis exporters).")
@click.option("--prometheus", "url", metavar="URL", help="A Prometheus-compatible query API to read series from.")
@click.option("--selector", metavar="MATCHERS",
              help="With --prometheus: the series of the service, as label matchers: 'job=\"checkout\"' "
                   "(add its Redis exporter's job with 'job=~\"checkout|redis\"').")
@click.option("--service", metavar="NAME", help="The service's name (default: the data's `application` label or job).")
@click.option("--team", metavar="TEAM", help="The team its alerts go to (default: sre).")
@click.option("--profile", type=click.Choice(["micrometer", "python"]),
              help="The metric naming to recognise (default: the one that explains the most of the data).")
@click.option("-o", "--out", metavar="FILE", help="Where to write the spec (default: <service>.yaml; - for stdout).")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.option("--bearer-token-file", metavar="FILE", help="Send the token in FILE as `Authorization: Bearer`.")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="An extra HTTP header (X-Scope-OrgID for Mimir); repeatable.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, metavar="SECONDS",
              help="Longest wait for any one answer.")
def init(expositions: tuple[str, ...], url: str | None, selector: str | None, service: str | None,
         team: str | None, profile: str | None, out: str | None, force: bool, bearer_token_file: str | None,
         headers: tuple[str, ...], timeout: float) -> int:
    """Draft a spec from what a service already exposes, and report what was and was not recognised."""
    import time

    from obsgen.console import echo
    from obsgen.errors import UsageError
    from obsgen.init import drafting, report, scrape
    from obsgen.init.writer import render
    from obsgen.verify import exposition
    from obsgen.verify.web import client

    if bool(url) == bool(expositions):
        raise UsageError("give either --metrics FILE_OR_URL... or --prometheus URL --selector MATCHERS")
    if selector and selector.strip().startswith("{") and selector.strip().endswith("}"):
        selector = selector.strip()[1:-1]  # PromQL's own braces: `{job="x"}`
    if url and not selector:
        raise UsageError("--prometheus needs --selector, the service's series: --selector 'job=\"checkout\"'")
    if url and not url.startswith(("http://", "https://")):
        raise UsageError(f"--prometheus {url}: expected an http:// or https:// URL (http://{url}?)")
    if selector and not url:
        raise UsageError("--selector applies to --prometheus; --metrics reads every series of the text")
    _check_names(service, team)
    if out or service:
        _check_target(out or f"{service}.yaml", force)
    http, at = client(bearer_token_file, headers, timeout), time.time()
    if url:
        data = scrape.from_prometheus(url, http, selector, at)
        if not data.samples:
            raise UsageError(f"{url}: no series match {{{selector}}}; check the selector against the job names")

        def inventory_for(names: set[str]):
            from obsgen.verify import prometheus

            return prometheus.inventory(url, http, names, at, LOOKBACK_S)
    else:
        texts = [exposition.read(source, http) for source in expositions]
        data = scrape.from_texts(texts)

        def inventory_for(names: set[str]):
            return exposition.inventory(texts, names)

    draft = drafting.draft(data, service=service, team=team, profile=profile)
    text = render(draft)
    name = next(f.value for f in draft.service if f.key == "name")
    target = out or f"{name}.yaml"
    _check_target(target, force)
    echo(report.text(draft) + report.verified(_verify(text, target, inventory_for)), err=True, nl=False)
    if target == "-":
        echo(text, nl=False)
        return 0
    _write(target, text, force)
    echo(f"obsgen init: wrote {target} (the service and {len(draft.entries)} components); next: obsgen build "
         f"{target}", err=True)
    return 0


def _verify(text: str, target: str, inventory_for) -> list:
    """What ``obsgen verify`` would find in the draft against the same data (notes left out): a spec the draft
    cannot build is obsgen's bug, never the user's."""
    from obsgen.errors import SpecError
    from obsgen.spec import parse
    from obsgen.verify.run import verify

    try:
        spec = parse(text, target)
    except SpecError as exc:
        raise RuntimeError(f"the drafted spec does not validate:\n{exc}") from None
    return [f for f in verify([spec], inventory_for).findings if not f.note]


def _check_names(service: str | None, team: str | None) -> None:
    """--service and --team as the schema wants them, said before anything is read."""
    import re

    from obsgen.errors import UsageError
    from obsgen.spec.schema import schema

    props = schema()["$defs"]["service"]["properties"]
    for option, value, key in (("--service", service, "name"), ("--team", team, "team")):
        if value is not None and not re.fullmatch(props[key]["pattern"], value):
            raise UsageError(f"{option} {value!r}: expected {props[key]['x-expect']}")


def _check_target(target: str, force: bool) -> None:
    """Refuse an output path that cannot be written before anything is read: a directory, or a file that exists
    without --force. Missing directories are created, as `build --out` creates its own (the README's tour
    writes tour/drafted.yaml first)."""
    from pathlib import Path

    from obsgen.errors import UsageError

    if target == "-":
        return
    path = Path(target)
    if path.is_dir():
        raise UsageError(f"-o {target}: is a directory; give a file name")
    if path.exists() and not force:
        raise UsageError(f"{target} exists; pass --force to overwrite it")


def _write(target: str, text: str, force: bool) -> None:
    """Write ``target`` whole (a temporary file renamed over it); :func:`_check_target` said it may be."""
    import os
    from pathlib import Path

    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

