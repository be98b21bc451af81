"""Runbooks: one Markdown page per alert name a service emits, plus an index.

Pages come from Jinja2 templates in ``obsgen/templates/runbooks`` (one per
component kind, sharing ``_page.md.j2``), rendered in a sandbox with strict
undefined. Every expression a template prints is Markdown-escaped unless a
filter marked it as already safe (``code``, ``sh``, ``fenced``, ``md``), so
text from the spec (names, descriptions) can never inject Markdown, HTML or
Jinja.

Every generated part of a page sits between ``<!-- BEGIN GENERATED: <id> -->``
and ``<!-- END GENERATED: <id> -->``; :func:`merge` refreshes those blocks in a
page a human has annotated and keeps everything written outside them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from obsgen.model.promql import Expr, Selector, same_shape, selectors, union
from obsgen.model.panels import Dashboard
from obsgen.model.promql import render as promql
from obsgen.model.rules import Alert, AlertDef
from obsgen.model.service import ComponentModel, ServiceModel

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
INDEX = "README.md"
SECTIONS = ("meaning", "impact", "checks", "diagnosis", "mitigation", "behaviour")
"""Every alert's prose, one macro per section in its kind's template: ``<Alert>__<section>``."""
OPTIONAL_SECTIONS = ("escalation",)
"""Sections with a layout default (escalation by severity), for the alerts whose own rhythm it would get wrong:
an alert that clears by itself within minutes cannot be "still firing after 30 minutes"."""

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}

# ---------------------------------------------------------------------------------------------
# Escaping


class Safe(str):
    """Text that is already valid Markdown; the template finalizer prints it as is."""


_SPACES = re.compile(r"\s+")
_BACKTICKS = re.compile("`+")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|{}#~$&])")
_LINE_START = re.compile(r"^([-+=])|^(\d+)([.)])")


def md(value: object) -> Safe:
    """Escape Markdown (and HTML, entities, GitHub math and Jinja braces) in user text for prose or table cells.

    The text renders exactly as written: every character Markdown could read as syntax is
    backslash-escaped, including a leading ``-``, ``+``, ``=`` or ``1.`` that would start a list or heading.
    """
    if isinstance(value, Safe):
        return value
    return _escaped(str(value))


@lru_cache(maxsize=4096)
def _escaped(text: str) -> Safe:
    """:func:`md` of a plain string, remembered: a service's pages print the same few hundred names and labels
    thousands of times."""
    text = _SPACES.sub(" ", text)  # no newlines: they would break tables and lists
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return Safe(_LINE_START.sub(lambda m: f"\\{m.group(1)}" if m.group(1) else f"{m.group(2)}\\{m.group(3)}", text))


def _longest_backticks(text: str) -> int:
    """The longest run of backticks in ``text`` (most texts have none: no regex search for them)."""
    return max(map(len, _BACKTICKS.findall(text)), default=0) if "`" in text else 0


def code(value: object) -> Safe:
    """An inline code span showing ``value`` literally: fenced by more backticks than any run inside it."""
    text = " ".join(str(value).split())
    fence = "`" * (_longest_backticks(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Safe(f"{fence}{pad}{text}{pad}{fence}")


def sh(value: object) -> Safe:
    """A shell word for a command in a fenced block (quoted when needed, never a backtick)."""
    return Safe(shlex.quote(" ".join(str(value).replace("`", "'").split())))


def fenced(value: object, lang: str = "", indent: int = 0) -> Safe:
    """A fenced code block whose fence is longer than any backtick run inside it.

    ``indent`` spaces go before every line, to nest the block in a list item.
    """
    text = str(value).rstrip("\n")
    fence = "`" * max(3, _longest_backticks(text) + 1)
    pad = " " * indent
    lines = [f"{fence}{lang}", *text.split("\n"), fence]
    return Safe("\n".join(pad + line if line else line for line in lines))


def join(items: Iterable[object], separator: str = "") -> str:
    """Jinja's ``join`` that keeps Markdown built by the template: a list holding a :class:`Safe` item (a link, a
    code span) joins to Safe text, its plain items escaped, instead of a plain string the finalizer would escape
    link and all (``\\[CircuitBreakerOpen\\](…)``). Plain items alone join to plain text, as before: a command or a
    regex joined for a code block must not be escaped. The separator is template text."""
    items = list(items)
    if not any(isinstance(i, Safe) for i in items):
        return separator.join(str(i) for i in items)
    return Safe(separator.join(md(i) for i in items))


def _finalize(value: Any) -> Any:
    if isinstance(value, Safe) or hasattr(value, "__html__") or value is None:
        return value  # Safe, or a macro's output marked |safe (Markup): already Markdown
    if isinstance(value, str):
        return md(value)
    return value


_env_cache: list = []


def pct(x: float) -> str:
    return f"{x * 100:g}%"


def num(value: float) -> str:
    """A number for prose: ``5000`` → ``5,000``; ``0.1`` → ``0.1``."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


_ENV_OPTIONS = dict(autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def _env():
    if _env_cache:
        return _env_cache[0]
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    class Sandbox(SandboxedEnvironment):
        """Jinja's sandbox, deciding once per type and attribute name whether templates may read it.

        Its answer depends on nothing else (the attribute's name, and which kind of Python object holds it:
        function, method, class, frame, generator), and the pages read the same few attributes tens of
        thousands of times. An object that claims another class than its type is judged every time.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.safe: dict[tuple[type, str], bool] = {}

        def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
            kind = type(obj)
            if obj.__class__ is not kind:
                return super().is_safe_attribute(obj, attr, value)
            try:
                return self.safe[kind, attr]
            except KeyError:
                answer = self.safe[kind, attr] = super().is_safe_attribute(obj, attr, value)
                return answer

    env = Sandbox(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                  finalize=_finalize, bytecode_cache=_bytecode_cache(), **_ENV_OPTIONS)
    env.filters.update(md=md, code=code, sh=sh, fenced=fenced, pct=pct, num=num, join=join)
    _env_cache.append(env)
    return env


CACHE_KEPT_DAYS = 30
"""How long the compiled templates of another obsgen (another ``templates-*`` directory) stay in the user's cache."""


def _bytecode_cache():
    """The templates compiled once per user, not on every run (compiling them was a third of a cold build).

    Jinja keeps the compiled code in the user's cache directory (``$XDG_CACHE_HOME/obsgen``, else
    ``~/.cache/obsgen``), one file per template, and recompiles a template whose source changed (and
    for another Python). The directory's name carries what else shapes the code: the Jinja version and this
    module (the environment's class, options and finalizer). A cache that cannot be read or written only
    costs the compile (``None``: no cache at all).

    The cache stays bounded: an entry is named by the template's name alone (Jinja's default adds the
    template's path, which gave every checkout and virtualenv its own copy of each template), and the first
    run of another obsgen removes the directories nothing has written to for :data:`CACHE_KEPT_DAYS` (an
    obsgen still using one compiles its templates again).
    """
    import hashlib
    import os

    import jinja2
    from jinja2 import FileSystemBytecodeCache

    class QuietCache(FileSystemBytecodeCache):
        def get_cache_key(self, name: str, filename: str | None = None) -> str:
            return hashlib.sha1(name.encode()).hexdigest()

        def load_bytecode(self, bucket) -> None:
            """Jinja's own reading of an entry, but the code unmarshalled from bytes: handed the open file (Jinja's
            way), marshal calls its readinto() once per object read (~10 ms for maple's 12 templates, ~2 ms so)."""
            import io
            import marshal
            import pickle

            from jinja2.bccache import bc_magic

            try:
                with open(self._get_cache_filename(bucket), "rb") as f:
                    data = f.read()
            except OSError:
                return
            try:
                header = io.BytesIO(data)
                if header.read(len(bc_magic)) != bc_magic or pickle.load(header) != bucket.checksum:
                    bucket.reset()
                    return
                bucket.code = marshal.loads(data[header.tell():])
            except Exception:  # noqa: BLE001 - a damaged entry is a miss, never a failed build
                bucket.reset()

        def dump_bytecode(self, bucket) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                pass

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.blake2b(jinja2.__version__.encode() + b"\0" + Path(__file__).read_bytes(), digest_size=6)
    directory = Path(base, "obsgen", f"templates-{key.hexdigest()}")
    if not directory.is_dir():
        try:
            directory.mkdir(mode=0o700, parents=True)
        except FileExistsError:  # another build created it meanwhile, or a file is in the way
            if not directory.is_dir():
                return None
        except OSError:
            return None
        _prune(directory.parent, keep=directory)
    return QuietCache(str(directory), "%s.cache")


def _prune(cache: Path, keep: Path) -> None:
    """Remove other obsgens' compiled templates unwritten for :data:`CACHE_KEPT_DAYS` (best effort)."""
    import shutil
    import time

    horizon = time.time() - CACHE_KEPT_DAYS * 86400
    for old in cache.glob("templates-*"):
        try:
            if old != keep and old.stat().st_mtime < horizon:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# Pages


def _rule_yaml(alert: Alert) -> str:
    """The alert exactly as its rule file renders it."""
    from obsgen.render.rules import rule
    from obsgen.render.yamlout import dump

    return dump([rule(alert)])


@dataclass(eq=False, repr=False)
class Instance:
    """One rule of the page's alert: the alert and the component that emits it."""

    alert: Alert
    component: ComponentModel

    @property
    def where(self) -> str:
        """``cache `equipment` (L1)``: the component, and the labels that tell its rules of this name apart."""
        tag = ", ".join(f"{v}" for _, v in sorted(self.alert.tag.items()))
        return f"{self.component.kind_title} {code(self.component.name)}" + (f" ({md(tag)})" if tag else "")


@dataclass(eq=False, repr=False)
class Page:
    """What one runbook page shows: the alert, every rule of that name, and the queries to run."""

    definition: AlertDef
    kind: str
    instances: list[Instance]
    rule_file: str
    related: list[str]
    dashboard: tuple[str, str] | None
    origins: Mapping[str, str | None] = field(default_factory=dict)
    """Who publishes each metric any component of the service reads: a page may read another component's
    (ComponentMetricsMissing reads the service's ``up``)."""
    sections: dict[str, str] = field(default_factory=dict)

    @property
    def alert(self) -> str:
        return self.definition.name

    @property
    def fired_labels(self) -> list[str]:
        """The labels that tell this page's firing alerts apart, besides ``component``, ``service``, ``team``,
        ``severity`` and ``environment``: what its rules' expressions keep, as their generated tests expect it (``instance`` only
        where a rule judges each process)."""
        names: set[str] = set()
        for i in self.instances:
            names.update(i.alert.tag)
            for s in i.alert.scenarios:
                if any(c.fires for c in s.checks):
                    names.update(s.labels)
                    if s.per_instance and not s.alone:
                        names.add("instance")
        return sorted(names - {"component", "service", "team", "severity", "environment"})

    @property
    def summary(self) -> str:
        return self.definition.summary

    @property
    def severities(self) -> list[str]:
        return sorted({i.alert.severity for i in self.instances}, key=lambda s: (_SEVERITY_ORDER.get(s, 9), s))

    @property
    def components(self) -> list[ComponentModel]:
        return list({id(i.component): i.component for i in self.instances}.values())

    @property
    def histories(self) -> list[tuple[str, list[str], tuple[str, ...]]]:
        """The spec's ``history`` of the components on the page: (kind, names, entries), components that share
        the same entries (one YAML anchor for four caches) told once."""
        return self._told_once("history")

    @property
    def assumptions(self) -> list[tuple[str, list[str], tuple[str, ...]]]:
        """The spec's ``assumptions`` of the components on the page (the service's own on its pages), grouped as
        :attr:`histories`: what on-call must not take for a fact of the service."""
        return self._told_once("assumptions")

    def _told_once(self, key: str) -> list[tuple[str, list[str], tuple[str, ...]]]:
        out: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        for c in self.components:
            if entries := getattr(c.spec, key):
                out.setdefault((c.kind_title.lower(), tuple(entries)), []).append(c.name)
        return [(kind, names, entries) for (kind, entries), names in out.items()]

    def query(self, name: str, indent: int = 3) -> Safe:
        """The diagnostic query ``name`` of every rule on the page (see :func:`queries`)."""
        found = [(i, dict(i.alert.queries)[name]) for i in self.instances if name in dict(i.alert.queries)]
        if not found:
            raise KeyError(f"{self.alert}: no diagnostic query named {name!r}")
        return queries(found, indent)

    def has_query(self, name: str) -> bool:
        """Whether a rule of the page has the diagnostic query ``name`` (a signal a profile lacks has none)."""
        return any(name in dict(i.alert.queries) for i in self.instances)

    def metrics(self) -> list[tuple[str, str | None]]:
        """Every metric the page's rules and queries read directly, with the library that publishes it
        (``None``: the application defines it), in order of appearance."""
        seen: dict[str, str | None] = {}
        for i in self.instances:
            recorded = {r.record for r in i.component.recordings}
            direct = selectors(i.alert.expr)
            read = {s.metric for s in direct}
            exprs: list[Expr] = [e for _, e in i.alert.queries]
            exprs += [r.expr for r in i.component.recordings if r.record in read]
            for s in [*direct, *(s for e in exprs for s in selectors(e))]:
                if s.metric not in recorded and s.metric not in seen:
                    own = i.component.origins
                    seen[s.metric] = own[s.metric] if s.metric in own else self.origins.get(s.metric)
        return list(seen.items())


def queries(found: Sequence[tuple[Instance, Expr]], indent: int = 3) -> Safe:
    """Diagnostic queries of several rules as few fenced blocks as it takes: the queries that differ only in
    label values merged into one (``cache=~"a|b"``), each such group under the names of the rules it covers
    when there is more than one (a cache with tiers beside one without)."""
    groups: list[tuple[list[Instance], list[Expr]]] = []
    for i, e in found:
        group = next((g for g in groups if same_shape(g[1][0], e)), None)
        if group is None:
            groups.append(([i], [e]))
        else:
            group[0].append(i)
            group[1].append(e)
    blocks = [(members, union(exprs)) for members, exprs in groups]
    if len(blocks) == 1:
        return fenced(promql(blocks[0][1]), "promql", indent)
    pad = " " * indent
    return Safe("\n\n".join(f"{pad}{', '.join(i.where for i in members)}:\n\n{fenced(promql(e), 'promql', indent)}"
                            for members, e in blocks))


def _pages(model: ServiceModel) -> list[Page]:
    by_name: dict[str, list[Instance]] = {}
    files: dict[str, str] = {}
    for g in model.groups:
        for alert in g.alerts:
            files[alert.name] = f"prometheus/{g.file}.yaml"
    for c in model.components:
        for alert in c.alerts:
            by_name.setdefault(alert.name, []).append(Instance(alert, c))
    names = set(by_name)
    origins: dict[str, str | None] = {}
    for c in model.components:
        for metric, origin in c.origins.items():
            if origins.get(metric) is None:
                origins[metric] = origin
    boards = [(d.url, d) for d in model.dashboards]
    pages = []
    for name in sorted(by_name):
        instances = by_name[name]
        definition = instances[0].alert.definition
        board = _dashboard(boards, instances[0].alert)
        pages.append(Page(definition, definition.template or instances[0].component.kind, instances, files[name],
                          [r for r in definition.related if r in names and r != name], board, origins))
    return pages


def _dashboard(boards: list[tuple[str, Dashboard]], alert: Alert) -> tuple[str, str] | None:
    """The dashboard the alert links to: its title and where it opens. With ``service.dashboard_base_url`` that
    is Grafana; without it the alert's URL is a bare ``/d/…`` path that would resolve against the repository
    viewer, so the page links the dashboard's JSON file next to it instead (importable, and it exists).
    ``boards`` are the service's dashboards with their URLs (computed once per service, not per page)."""
    url = alert.dashboard_url
    if not url:
        return None
    path = url.split("?", 1)[0]
    board = next((d for board_url, d in boards if path.endswith(board_url)), None)
    if board is None:
        return None
    return board.title, (path if not path.startswith("/") else f"../dashboards/{board.slug}.json")


def _context(model: ServiceModel, names: set[str]) -> dict:
    by_kind: dict[str, list[ComponentModel]] = {}
    for c in model.components:
        by_kind.setdefault(c.kind, []).append(c)

    def link(name: str) -> Safe:
        """A link to another runbook of this service, or the bare name when the service has no such page."""
        return Safe(f"[{name}]({name}.md)" if name in names else f"`{name}`")

    def query_of(components: Sequence[ComponentModel], alert: str, name: str, indent: int = 3) -> Safe:
        """The diagnostic query ``name`` of the ``alert`` rules of other components, for a page that sends
        on-call to them (a cache's L2 failures to its Redis servers): scoped as that alert's own page scopes it,
        never a bare metric that would list every team's servers. Empty when none of them has it."""
        found = [(Instance(a, c), dict(a.queries)[name]) for c in components for a in c.alerts
                 if a.name == alert and name in dict(a.queries)]
        return queries(found, indent) if found else Safe("")

    from obsgen.render.alertmanager import inhibitions

    # What Alertmanager holds back, exactly as the routes file writes it (or withholds it): pages say nothing else.
    return {"service": model.service, "by_kind": by_kind, "alerts": sorted(names), "link": link,
            "query_of": query_of, "inhibitions": inhibitions(model)}


def _sections(env, page: Page, common: dict) -> dict[str, str]:
    """The alert's own prose, from its kind's template: the macro ``<Alert>__<section>`` of each section."""
    module = env.get_template(f"runbooks/{page.kind}.md.j2").make_module({**common, "page": page})
    out = {}
    for section in SECTIONS + OPTIONAL_SECTIONS:
        name = f"{page.definition.prose}__{section}"
        macro = getattr(module, name, None)
        if macro is not None:
            out[section] = Safe(str(macro()).strip("\n"))
        elif section in SECTIONS:
            raise LookupError(f"runbooks/{page.kind}.md.j2 has no macro {name}")
    return out


def render(model: ServiceModel) -> dict[str, str]:
    """Runbook pages keyed ``<service>/runbooks/<Alert>.md`` plus ``<service>/runbooks/README.md``.

    One page per distinct alert name; every rule of that name (one per component, or per cache tier) is
    described on it. Output is deterministic: same input, same bytes.
    """
    env = _env()
    pages = _pages(model)
    common = _context(model, {p.alert for p in pages})
    base = f"{model.service.name}/runbooks"
    layout = env.get_template("runbooks/_page.md.j2")
    out: dict[str, str] = {}
    for page in pages:
        page.sections = _sections(env, page, common)
        out[f"{base}/{page.alert}.md"] = _tidy(layout.render(**common, page=page,
                                                             rule_yaml=[_rule_yaml(i.alert) for i in page.instances]))
    out[f"{base}/{INDEX}"] = _tidy(env.get_template("runbooks/_index.md.j2").render(**common, pages=pages))
    return dict(sorted(out.items()))


def _tidy(text: str) -> str:
    """At most one blank line in a row and no trailing spaces outside code blocks; one final newline."""
    out: list[str] = []
    fence = ""
    for line in text.splitlines():
        stripped = line.strip()
        if fence:
            out.append(line)
            if stripped == fence:
                fence = ""
            continue
        if stripped.startswith("```"):
            fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
        line = line.rstrip()
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Keeping hand-written notes across regeneration

_BLOCK = re.compile(r"<!-- BEGIN GENERATED: ([A-Za-z0-9_.-]+) -->.*?<!-- END GENERATED: \1 -->", re.S)
_MARKER = re.compile(r"<!-- (BEGIN|END) GENERATED: ([A-Za-z0-9_.-]+) -->")


def _split(text: str) -> tuple[str, list[tuple[str, str, str]]]:
    """``(text before the first block, [(block id, block text, text after it up to the next block)])``.

    Raises ValueError when markers are unbalanced (a BEGIN or END a human deleted or garbled).
    """
    blocks = list(_BLOCK.finditer(text))
    covered = sum(1 for _ in _MARKER.finditer(text))
    if covered != 2 * len(blocks) or any(len(list(_MARKER.finditer(m.group(0)))) != 2 for m in blocks):
        raise ValueError("generated-block markers are unbalanced or nested; fix the page by hand")
    if not blocks:
        return text, []
    head = text[: blocks[0].start()]
    out = []
    for i, m in enumerate(blocks):
        end = blocks[i + 1].start() if i + 1 < len(blocks) else len(text)
        out.append((m.group(1), m.group(0), text[m.end(): end]))
    return head, out


def has_markers(text: str) -> bool:
    return bool(_MARKER.search(text))


def merge(existing: str, generated: str) -> str:
    """Refresh the generated blocks of ``existing`` from ``generated``, keeping human text.

    * Text outside generated blocks in ``existing`` (notes before the first block,
      between blocks, after the last) is kept, after the same block it followed
      (by block id). If that block no longer exists, the text follows the
      nearest earlier block that still does, or goes first; nothing a human wrote
      outside the blocks is dropped.
    * Every generated block comes from ``generated``, in its order: edits made
      inside a block are overwritten, blocks that disappeared are removed.
    * Where the human left only whitespace, ``generated``'s spacing is used, so
      ``merge(generated, generated) == generated`` and merging is idempotent.
    * If ``existing`` has no markers at all it is a hand-written page: it is returned
      unchanged and the caller decides (e.g. keep it and warn).
    * If ``existing``'s markers are unbalanced, :class:`ValueError` is raised
      rather than guess (a guess could duplicate or drop text).
    """
    if not has_markers(existing):
        return existing
    old_head, old_blocks = _split(existing)
    new_head, new_blocks = _split(generated)
    new_ids = [b[0] for b in new_blocks]
    # Human text after each block id; text whose block vanished moves to the nearest earlier surviving block.
    notes: dict[str | None, list[str]] = {}
    anchor: str | None = None
    if old_head.strip():
        notes.setdefault(None, []).append(old_head)
    for block_id, _, tail in old_blocks:
        if block_id in new_ids:
            anchor = block_id
        if tail.strip():
            notes.setdefault(anchor, []).append(tail)
    parts = ["".join(notes[None]) if None in notes else new_head]
    for block_id, block, tail in new_blocks:
        parts.append(block)
        parts.append("".join(notes[block_id]) if block_id in notes else tail)
    return "".join(parts)
