"""Reading what ``obsgen build`` wrote: the rules, routes and dashboards of each service.

``obsgen diff`` works from output directories only, never from obsgen's internals, so it compares two
builds made by different obsgen versions as easily as two builds of different specs. A service is a
folder holding ``.obsgen-manifest.json``; the manifest names the files obsgen owns, so files people added
next to them are not read (with ``environments`` in the manifest, each ``<service>/<environment>/`` is a service
of its own, named ``<service>/<environment>``). Rule files are ``prometheus/*.yaml`` (not the ``*.test.yaml``
promtool tests, nor the copies of one component's rules they load from ``prometheus/components/``), routing is ``alertmanager/routes.yaml``, dashboards are ``dashboards/*.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from obsgen.diff.routing import Matcher, Route
from obsgen.errors import UsageError

MANIFEST = ".obsgen-manifest.json"
ROUTES = "alertmanager/routes.yaml"

Labels = tuple[tuple[str, str], ...]


class NotAnOutput(UsageError):
    """The directory (or one of its files) is not what ``obsgen build`` writes."""


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    keep_firing_for: str
    labels: Labels
    annotations: Labels

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def component(self) -> str:
        return self.label_map.get("component", "")


@dataclass(frozen=True)
class Recording:
    name: str
    expr: str
    labels: Labels


@dataclass(frozen=True)
class Inhibition:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


@dataclass(frozen=True)
class Panel:
    dashboard: str  # the dashboard's title
    title: str
    queries: tuple[str, ...]


@dataclass
class Service:
    name: str
    alerts: list[Alert] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)
    routes: tuple[Route, ...] = ()
    inhibitions: list[Inhibition] = field(default_factory=list)
    dashboards: dict[str, str] = field(default_factory=dict)  # uid -> title
    panels: dict[str, list[Panel]] = field(default_factory=dict)  # uid -> panels with queries, in order


@dataclass
class Output:
    """One side of a diff: the services of a build, and how to name that build to the reader."""

    label: str
    services: dict[str, Service]
    built_by: str = ""


def load(path: Path, label: str | None = None) -> Output:
    """The services under ``path``: a build's output root (``generated/``) or one service's folder."""
    label = label or str(path)
    if not path.is_dir():
        raise NotAnOutput(f"{path}: not a directory (expected an output directory written by `obsgen build`)")
    folders = [path] if (path / MANIFEST).is_file() else sorted(p.parent for p in path.glob(f"*/{MANIFEST}"))
    if not folders:
        raise NotAnOutput(f"{path}: not an obsgen output directory (no <service>/{MANIFEST} in it); "
                          "give the --out of `obsgen build`, e.g. generated")
    services = [service for folder in folders for service in _services(folder)]
    return Output(label, {s.name: s for s in services})


def _services(folder: Path) -> list[Service]:
    """The service of one manifest; one per environment (named ``<service>/<environment>``) when the spec has
    ``environments:`` and each environment's files are in ``<service>/<environment>/``."""
    manifest = _json(folder / MANIFEST)
    files = manifest.get("files") if isinstance(manifest, Mapping) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise NotAnOutput(f"{folder / MANIFEST}: not an obsgen manifest (no list of `files`)")
    # Manifest paths are relative to the output root: `<service>/prometheus/rules.yaml`.
    owned = sorted(f.split("/", 1)[1] for f in files if "/" in f)
    environments = manifest.get("environments") or []
    if not isinstance(environments, list) or not all(isinstance(e, str) and e for e in environments):
        raise NotAnOutput(f"{folder / MANIFEST}: not an obsgen manifest (`environments` is not a list of names)")
    if not environments:
        return [_service(folder, folder.name, owned)]
    return [_service(folder / env, f"{folder.name}/{env}", [f.removeprefix(f"{env}/") for f in owned
                                                            if f.startswith(f"{env}/")])
            for env in environments]


def _service(folder: Path, name: str, owned: list[str]) -> Service:
    """One output set: ``owned`` are its files relative to ``folder``."""
    service = Service(name)
    for rel in owned:
        where, _, file = rel.rpartition("/")
        if where == "prometheus" and file.endswith(".yaml") and not file.endswith(".test.yaml"):
            _rules(folder / rel, service)
        elif rel == ROUTES:
            _routes(folder / rel, service)
        elif rel.startswith("dashboards/") and rel.endswith(".json"):
            _dashboard(folder / rel, service)
    return service


def _rules(path: Path, service: Service) -> None:
    data = _yaml(path)
    groups = data.get("groups") if isinstance(data, Mapping) else None
    if not isinstance(groups, list):
        raise NotAnOutput(f"{path}: not a Prometheus rule file (no `groups:`)")
    for group in groups:
        rules = group.get("rules") if isinstance(group, Mapping) else None
        if not isinstance(rules, list) or not all(isinstance(rule, Mapping) for rule in rules):
            raise NotAnOutput(f"{path}: not a Prometheus rule file (a group without a list of rules)")
        for rule in rules:
            labels = _pairs(rule.get("labels"))
            if "alert" in rule:
                service.alerts.append(Alert(str(rule["alert"]), str(rule.get("expr", "")), str(rule.get("for", "")),
                                            str(rule.get("keep_firing_for", "")), labels,
                                            _pairs(rule.get("annotations"))))
            elif "record" in rule:
                service.recordings.append(Recording(str(rule["record"]), str(rule.get("expr", "")), labels))


def _routes(path: Path, service: Service) -> None:
    data = _yaml(path)
    if not isinstance(data, Mapping):
        raise NotAnOutput(f"{path}: not an Alertmanager routing snippet")
    try:
        service.routes = tuple(Route.parse(r) for r in data.get("routes") or ())
        for rule in data.get("inhibit_rules") or ():
            service.inhibitions.append(Inhibition(
                tuple(Matcher.parse(m) for m in rule.get("source_matchers") or ()),
                tuple(Matcher.parse(m) for m in rule.get("target_matchers") or ()),
                tuple(str(label) for label in rule.get("equal") or ())))
    except (ValueError, AttributeError) as exc:
        raise NotAnOutput(f"{path}: {exc}") from None


def _dashboard(path: Path, service: Service) -> None:
    data = _json(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("panels"), list):
        raise NotAnOutput(f"{path}: not a Grafana dashboard (no `panels`)")
    uid = str(data.get("uid") or path.stem)
    title = str(data.get("title") or uid)
    service.dashboards[uid] = title
    panels = service.panels.setdefault(uid, [])
    stack = list(reversed(data["panels"]))
    while stack:
        panel = stack.pop()
        stack += reversed(panel.get("panels") or ())  # panels inside collapsed rows
        queries = tuple(str(t["expr"]) for t in panel.get("targets") or () if isinstance(t, Mapping) and "expr" in t)
        if queries:
            panels.append(Panel(title, str(panel.get("title") or ""), queries))


def _pairs(data) -> Labels:
    return tuple(sorted((str(k), str(v)) for k, v in (data or {}).items())) if isinstance(data, Mapping) else ()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotAnOutput(f"{path}: listed in the manifest but missing; rebuild the output") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotAnOutput(f"{path}: cannot be read ({exc})") from None


def _json(path: Path):
    try:
        return json.loads(_read(path))
    except json.JSONDecodeError as exc:
        raise NotAnOutput(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None


def _yaml(path: Path):
    import yaml

    try:
        return yaml.load(_read(path), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise NotAnOutput(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
