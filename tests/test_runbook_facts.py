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
prometheus_client (with prometheus-fastapi-instrumentator for declared HTTP routes and SLOs).
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
from obsgen.components import CATALOGUE
from obsgen.model.service import ServiceModel
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


def _kind(*kinds: str) -> Callable[[Spec], bool]:
    """The spec declares a component of one of ``kinds``: its pages may speak of that machinery."""
    return lambda spec: any(_declares(spec, k) for k in kinds)


def _tier(tier: str) -> Callable[[Spec], bool]:
    """Some cache of the spec has the tier ``tier`` (``l1``, ``l2``)."""
    return lambda spec: any(c.kind.key == "caches" and tier in c.spec.tiers for c in spec.components)


def _redis(test: Callable[[object], bool]) -> Callable[[Spec], bool]:
    """Some Redis of the spec passes ``test`` (its topology, its replicas)."""
    return lambda spec: any(c.kind.key == "redis" and test(c.spec) for c in spec.components)


_REPLICATED = _redis(lambda r: r.replicas > 0 or r.topology in ("sentinel", "cluster"))


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
    # The kinds' machinery: a page of a service without such a component (and whose spec never names it)
    # must not send on-call looking for it
    Term("Redis", r"\bredis", implied=_kind("redis")),
    Term("replica", r"\breplicas?\b|\breplication\b|\bpromoted\b", implied=_REPLICATED),
    Term("failover", r"\bfail-?overs?\b|\bfail(ed|ing|s)? over\b(?! (the \w+ window|\d)|\s*$)",
         implied=_REPLICATED),  # a replica can be promoted by hand even without Sentinel: a manual failover
    Term("L1 tier", r"\bL1\b", implied=_tier("l1")),
    Term("L2 tier", r"\bL2\b", implied=_tier("l2")),
    Term("executor", r"\bexecutors?\b|\bthread pools?\b", implied=_kind("executors")),
    Term("bulkhead", r"\bbulkheads?\b", implied=_kind("executors", "backpressure")),
    Term("distributed lock", r"\b(distributed|redis) locks?\b|\block (holder|lease|owner)s?\b", implied=_kind("locks")),
    Term("load balancer", r"\bload[- ]?balanc\w*"),

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
         implied=lambda spec: _has("http", _python)(spec) or _has("slos", _python)(spec)),  # SLOs read its series
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
ALERT_NAME = re.compile(r"\b(" + "|".join(sorted(CATALOGUE, key=len, reverse=True)) + r")\b")
"""Any alert of obsgen's catalogue: a page may name one only when its service emits it."""
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


@dataclass(frozen=True)
class Reader:
    """What one spec allows a page line to name: its words, numbers and log paths, and the alerts it emits."""

    text: str
    numbers: frozenset[str]
    forbidden: tuple[Term, ...]
    emitted: frozenset[str]

    @classmethod
    def of(cls, spec: Spec, emitted: set[str]) -> Reader:
        text = spec_text(spec)
        numbers = _numbers(text) | {n for kind, ports in IMPLIED_PORTS.items() if _declares(spec, kind) for n in ports}
        forbidden = tuple(t for t in VOCABULARY if not (t.implied(spec) or t.named_in(text)))
        return cls(text, frozenset(numbers), forbidden, frozenset(emitted))

    def terms(self, line: str) -> list[str]:
        """What ``line`` names that the spec does not: a term, a port, a measurement, a log file, an alert."""
        line = MARKDOWN_ESCAPE.sub(r"\1", line)  # `terminus\_db` on the page is the spec's terminus_db
        here = [t.name for t in self.forbidden if re.search(t.page, line, re.I)]
        here += [m.group(0).strip() for m in PORT.finditer(line) if (m.group(1) or m.group(2)) not in self.numbers]
        here += [m.group(0) for m in MEASURE.finditer(line) if m.group(1).replace(",", "") not in self.numbers]
        here += [m.group(0) for m in LOG_FILE.finditer(line) if m.group(0) not in self.text]
        here += [f"alert {m.group(0)}" for m in ALERT_NAME.finditer(line) if m.group(0) not in self.emitted]
        return here


def emitted_alerts(model: ServiceModel) -> set[str]:
    """The alert names the service's rules carry: the only ones its pages may send on-call to."""
    return {a.name for c in model.components for a in c.alerts}


def leaks(spec: Spec, *, alert_names: bool = True) -> list[Leak]:
    """Every line of every runbook page of ``spec`` that names something the spec does not. Without
    ``alert_names``, a page may name any alert of obsgen's catalogue: random specs disable alerts and leave kinds
    out at random, and the pages do not yet drop every cross-reference to an alert the service lacks (known gap,
    held to the strict rule for every committed and example spec)."""
    model = build(spec)
    reader = Reader.of(spec, emitted_alerts(model) if alert_names else set(CATALOGUE))
    found: list[Leak] = []
    for page, content in sorted(runbooks.render(model).items()):
        for number, line in enumerate(content.splitlines(), 1):
            found += [Leak(page, number, term, line) for term in reader.terms(line)]
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


SPEC_DIR = SPECS[0].parent
REVIEWED_LEAKS = {
    # Lines of the pages a review found naming machinery the service does not have (issue 20, first review).
    "anivault.yaml": {
        "2. Is the L2 (Redis) tier failing? `CacheL2Unavailable` or `RedisDown` firing explains a":
            {"Redis", "L2 tier", "alert CacheL2Unavailable", "alert RedisDown"},
        "that are down. Alerts read from other targets (a Redis exporter's, for example) still work and may fire "
        "alongside.": {"Redis"},
    },
    "user-service.yaml": {
        "5. Look at what waits on the pool: `ExecutorSaturated`, `BackpressureSaturated`.":
            {"alert ExecutorSaturated", "alert BackpressureSaturated"},
        "- Waiting requests hold their threads: executors and bulkheads in front of the database fill up too.":
            {"executor", "bulkhead"},
        "2. Do the dependency's other guards agree? `CircuitBreakerOpen` or `RetryExhaustionHigh`":
            {"alert CircuitBreakerOpen", "alert RetryExhaustionHigh"},
    },
    "oms.yaml": {
        "clears as soon as a server answers as master again. A lost replica alone, with the master serving, fires "
        "`RedisReplicaDown`": {"replica", "alert RedisReplicaDown"},
        "gracefully: failed L2 lookups fall back to L1 and then to the source, so the service keeps answering but the":
            {"L1 tier"},
        "- Ignored, the source may not carry the load; the distributed locks that rely on Redis fall back as well.":
            {"distributed lock"},
        "3. Is the source carrying the extra load? Watch its latency and the executors before anything else.":
            {"executor"},
    },
}


@pytest.mark.parametrize("spec_file", sorted(REVIEWED_LEAKS))
def test_alert_names_and_machinery_the_service_lacks_are_found(spec_file: str) -> None:
    """The check can fail on what it exists for: each line the review found on the committed pages (an alert the
    service never emits, a tier, Redis, executors, locks or replicas it does not have) is flagged for its spec."""
    spec = load_spec(SPEC_DIR / spec_file)
    reader = Reader.of(spec, emitted_alerts(build(spec)))
    for line, expected in REVIEWED_LEAKS[spec_file].items():
        assert set(reader.terms(line)) == expected, line


def test_a_page_claims_a_tier_label_only_where_its_rules_carry_one() -> None:
    """``Each tier has its own rule (`tier` label ...)`` must be true of the page it is on: OMS's one-tier cache has
    no labelled tier, so its CacheHitRateLow rule has no ``tier`` label and the page must not promise one."""
    for path in SPECS + VALID_SPECS:
        spec = load_spec(path)
        for page, text in runbooks.render(build(spec)).items():
            if "(`tier` label" in text:
                assert "tier: " in text.split("## Reference", 1)[1], f"{path.name}: {page}"


def test_the_cache_key_deletion_scans_the_keys_the_spec_names() -> None:
    """OMS's SmartCache keys are cache:schema:list:*, cache:schema:detail:*, cache:permissions:* (seed 000:100-113):
    the destructive step scans the spec's key_pattern, never Spring's `<cache>::*` default that matches none."""
    spec = load_spec(SPEC_DIR / "oms.yaml")
    page = runbooks.render(build(spec))["oms/runbooks/CacheL2Unavailable.md"]
    assert "--scan --pattern 'cache:*'" in page and "smart_cache::*" not in page
    assert "**assumed**" not in page


@settings(max_examples=6, derandomize=True, deadline=None, database=None, phases=(Phase.generate,),
          suppress_health_check=list(HealthCheck))
@given(valid_specs())
def test_runbooks_of_random_specs_name_only_what_the_spec_names(data: dict) -> None:
    """Specs drawn from the schema, whose free text names no technology: every page must stay neutral."""
    spec = parse(dump(data), "random.yaml")
    found = leaks(spec, alert_names=False)
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
