"""Every runbook page speaks of its own service: it names no technology, endpoint, system, port, log file or
measurement that the service's spec does not name and its metric profile does not imply.

A template written for one system carries that system's facts into every other ("curl /health/ready" for a
service without that route, `psql` for one on SQLite, "the Maple guide measured 180 ms" for a cache without
single-flight). This test builds each committed spec, each small spec of ``tests/specs/valid`` and specs drawn at
random from the schema (whose free text names nothing), and looks for the words of a vocabulary on every page.
A word is allowed on a page when some value of the spec names it (its descriptions, ``service.runtime``,
``service.logs``, ``assumptions``, ``history``, a topology, a metric name, ...: every string or number the spec
holds once defaults are filled in), or when the profile implies it: ``micrometer`` is Spring Boot with Actuator,
Micrometer and Resilience4j on the JVM (HikariCP where a database pool is declared); ``python`` is
prometheus_client (with prometheus-fastapi-instrumentator for declared HTTP routes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from conftest import SPECS, VALID_SPECS, load_spec
from specgen import dump, valid_specs
from obsgen.pipeline import build
from obsgen.render import runbooks
from obsgen.spec import Spec, parse


def _micrometer(spec: Spec) -> bool:
    return spec.service.profile == "micrometer"


def _python(spec: Spec) -> bool:
    return spec.service.profile == "python"


def _declares(spec: Spec, kind: str) -> bool:
    return any(c.kind.key == kind for c in spec.components)


def _has(kind: str, profile: Callable[[Spec], bool]) -> Callable[[Spec], bool]:
    return lambda spec: profile(spec) and _declares(spec, kind)


@dataclass(frozen=True)
class Term:
    """A word of the vocabulary: ``page`` finds it on a page (case-insensitive), ``named`` in the spec's values
    (default: ``page``); ``implied`` says whether the service's profile (and kinds) implies it anyway."""

    name: str
    page: str
    named: tuple[str, ...] = ()
    implied: Callable[[Spec], bool] = field(default=lambda spec: False)

    def named_in(self, text: str) -> bool:
        return any(re.search(p, text, re.I) for p in (self.page, *self.named))


JVM = r"\b(JVM|jstack|jcmd|jmap|heap dump|GC pauses?|garbage collect\w*)\b"
VOCABULARY: tuple[Term, ...] = (
    # Data stores and their tools
    Term("PostgreSQL", r"\bpostgres(ql)?\b|\bpg_\w+", (r"\basyncpg\b", r"\bpsycopg\d?\b")),
    Term("psql", r"\bpsql\b", (r"\bpostgres(ql)?\b",)),
    Term("MySQL", r"\bmysql\b|\bmariadb\b"),
    Term("SQLite", r"\bsqlite3?\b"),
    Term("TerminusDB", r"\bterminus(db)?\b"),
    Term("SQLAlchemy", r"\bsqlalchemy\b"),
    Term("asyncpg", r"\basyncpg\b"),
    # Redis clients and topologies
    Term("Redisson", r"\bredisson\b|\bRLock\b"),
    Term("Lettuce", r"\blettuce\b"),
    Term("Jedis", r"\bjedis\b"),
    Term("redis-py", r"\bredis-py\b|\bredis\.asyncio\b"),
    Term("Sentinel", r"\bsentinels?\b|\bget-master-addr-by-name\b", (r"\bsentinel",)),
    # Caches
    Term("Caffeine", r"\bcaffeine\b"),
    Term("cachetools", r"\bcachetools\b|\baiocache\b"),
    Term("singleflight.deduplication", r"singleflight\.deduplication"),
    Term("TieredCache", r"\bTieredCache\b"),
    Term("SmartCache", r"\bSmartCache\b"),
    # Runtimes, frameworks and libraries
    Term("Spring", r"\bspring\b(?!\s*(clean|cleaning))|@Async|@Cacheable|@Locked|\bapplication\.ya?ml\b",
         implied=_micrometer),
    Term("Actuator", r"\bactuator\b", implied=_micrometer),
    Term("Micrometer", r"\bmicrometer\b", implied=_micrometer),
    Term("Resilience4j", r"\bresilience4j\b", implied=_micrometer),
    Term("JVM", JVM, (r"\bjava\b", r"\bkotlin\b", r"\bspring\b"), implied=_micrometer),
    Term("HikariCP", r"\bhikari(cp)?\b", implied=_has("db_pools", _micrometer)),
    Term("Tomcat", r"\btomcat\b"),
    Term("prometheus_client", r"\bprometheus_client\b", implied=_python),
    Term("prometheus-fastapi-instrumentator", r"\bprometheus-fastapi-instrumentator\b",
         implied=_has("http", _python)),
    Term("FastAPI", r"(?<!prometheus-)\bfastapi\b(?!-instrumentator)"),
    Term("uvicorn", r"\buvicorn\b|\bgunicorn\b"),
    Term("Django", r"\bdjango\b"),
    Term("Flask", r"\bflask\b"),
    Term("asyncio", r"\basyncio\b"),
    Term("Kafka", r"\bkafka\b"),
    Term("RabbitMQ", r"\brabbitmq\b"),
    Term("Kubernetes", r"\bkubectl\b|\bkubernetes\b|\bCrashLoopBackOff\b", (r"\bk8s\b",)),
    Term("systemd", r"\bjournalctl\b|\bsystemctl\b|\bsystemd\b"),
    Term("Docker", r"\bdocker\b"),
    # Endpoints
    Term("/health/...", r"(?<![\w.])/health(/[\w-]+)?\b"),
    Term("/actuator/...", r"(?<![\w.])/actuator/[\w./-]+", implied=_micrometer),
    Term("/metrics", r"(?<![\w./])/metrics\b", implied=lambda spec: _python(spec) or _declares(spec, "redis")),
    # Seed systems and their people, guides and incidents
    Term("Maple", r"\bmaple(expectation|story)?\b|\bnexon\b"),
    Term("OMS", r"\boms\b|\bontology management\b"),
    Term("AniVault", r"\banivault\b|\bTMDB\b"),
    Term("Table Order", r"\btable[ -]?order\b"),
    Term("Discord", r"\bdiscord\b|\bslack\b"),
)
# Numbers and paths that only a spec can make true: each allowed when the spec holds that very value.
PORT = re.compile(r"(?<![\w.,/-])(?:port\s+|:|-p\s+)(\d{4,5})\b|\b(8080|8000|8091|5432|5433|3306|6363|9090)\b", re.I)
MEASURE = re.compile(r"\b(\d[\d,]*(?:\.\d+)?)\s?(ms|milliseconds)\b", re.I)
LOG_FILE = re.compile(r"[\w./~-]*\w\.log\b")
MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
IMPLIED_PORTS = {"redis": {"9121"}}
"""Ports a kind implies: redis_exporter listens on 9121 unless told otherwise."""


def _values(node: object) -> Iterator[str]:
    """Every scalar value of a spec document, as text (keys are the schema's words, not the service's)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from _values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value)
    elif node is not None:
        yield str(node)


def spec_text(spec: Spec) -> str:
    """What the spec names: its values with the schema's defaults filled in, one per line."""
    assert spec.source is not None
    return "\n".join(_values(spec.source.data))


@dataclass(frozen=True)
class Leak:
    page: str
    line: int
    term: str
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.term!r} in: {self.text.strip()[:160]}"


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)}


def leaks(spec: Spec) -> list[Leak]:
    """Every line of every runbook page of ``spec`` that names something the spec does not."""
    text = spec_text(spec)
    numbers = _numbers(text) | {n for kind, ports in IMPLIED_PORTS.items() if _declares(spec, kind) for n in ports}
    allowed = [t for t in VOCABULARY if t.implied(spec) or t.named_in(text)]
    forbidden = [t for t in VOCABULARY if t not in allowed]
    found: list[Leak] = []
    for page, content in sorted(runbooks.render(build(spec)).items()):
        for number, line in enumerate(content.splitlines(), 1):
            line = MARKDOWN_ESCAPE.sub(r"\1", line)  # `terminus\_db` on the page is the spec's terminus_db
            here = [t.name for t in forbidden if re.search(t.page, line, re.I)]
            here += [m.group(0).strip() for m in PORT.finditer(line) if (m.group(1) or m.group(2)) not in numbers]
            here += [m.group(0) for m in MEASURE.finditer(line) if m.group(1).replace(",", "") not in numbers]
            here += [m.group(0) for m in LOG_FILE.finditer(line) if m.group(0) not in text]
            found += [Leak(page, number, term, line) for term in here]
    return found


def _report(spec: Spec, found: list[Leak]) -> str:
    terms = sorted({leak.term for leak in found})
    return (f"{spec.file}: {len(found)} runbook lines name what the spec never names ({', '.join(terms)}); "
            "print the spec's fact (or a neutral step), or name it in the spec:\n"
            + "\n".join(str(leak) for leak in found))


@pytest.mark.parametrize("path", SPECS + VALID_SPECS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_runbooks_name_only_what_the_spec_names(path: Path) -> None:
    spec = load_spec(path)
    found = leaks(spec)
    assert not found, _report(spec, found)


LEAKY = """\
apiVersion: obsgen/v1
service: {name: quiet, team: ops, profile: python}
caches:
  - name: things
    tiers: {l1: {ttl: 1m}, l2: {ttl: 5m}}
redis:
  - name: store
    topology: standalone
health_checks:
  - name: db
"""


def test_the_vocabulary_finds_a_technology_the_spec_never_names() -> None:
    """The check itself can fail: a page line naming Sentinel, psql or a port of a spec that names none is found."""
    spec = parse(LEAKY, "leaky.yaml")
    text = spec_text(spec)
    sentinel = next(t for t in VOCABULARY if t.name == "Sentinel")
    assert not sentinel.named_in(text)
    assert sentinel.named_in(text + "\ntopology: sentinel")
    assert PORT.search("psql -h db -p 5433") and not _numbers(text) & {"5433"}
    assert MEASURE.search("the guide measured 180 ms") and LOG_FILE.search("grep logs/app.log")


@settings(max_examples=6, derandomize=True, deadline=None, database=None, phases=(Phase.generate,),
          suppress_health_check=list(HealthCheck))
@given(valid_specs())
def test_runbooks_of_random_specs_name_only_what_the_spec_names(data: dict) -> None:
    """Specs drawn from the schema, whose free text names no technology: every page must stay neutral."""
    spec = parse(dump(data), "random.yaml")
    found = leaks(spec)
    assert not found, _report(spec, found)


ASSUMING = """\
apiVersion: obsgen/v1
service:
  name: assuming
  team: ops
  profile: python
  runtime: Python CLI
  logs: journalctl -u assuming
  assumptions: ["the CLI runs as one systemd unit"]
caches:
  - name: meta
    assumptions: ["the app counts lock failures as cache_lock_failure_total"]
  - name: other
"""
ASSUMED = "Assumed (not stated by the service's own documents): "


def test_assumptions_are_shown_as_assumed_on_every_page_of_their_component_and_nowhere_else() -> None:
    spec = parse(ASSUMING, "assuming.yaml")
    assert (spec.service.runtime, spec.service.logs) == ("Python CLI", "journalctl -u assuming")
    pages = {path.rsplit("/", 1)[1]: text for path, text in runbooks.render(build(spec)).items()}
    cache_pages = [p for p in pages if p.startswith("Cache")]
    service_pages = ["ServiceDown.md", "InstanceDown.md"]
    assert cache_pages and all(p in pages for p in service_pages)
    for page in cache_pages:
        assert f"{ASSUMED}the app counts lock failures as cache\\_lock\\_failure\\_total" in pages[page], page
        assert "systemd unit" not in pages[page], page
    for page in service_pages:
        assert f"{ASSUMED}the CLI runs as one systemd unit" in pages[page], page
        assert "lock failures" not in pages[page].split("## First checks")[0], page
