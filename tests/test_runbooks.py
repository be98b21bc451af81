"""Runbook pages: one per alert, linked from the rules, complete, safe with hostile text, and mergeable."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pytest

from conftest import CACHE_ON_REDIS, SPECS, VALID_SPECS
from obsgen.components.base import Alert
from obsgen.model.promql import render
from obsgen.pipeline import build
from obsgen.render import runbooks
from obsgen.spec import load, parse

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "maple-expectation"
SECTIONS = ["What it means", "First checks", "Impact", "Diagnosis", "Mitigation", "Escalation", "Alert behaviour",
            "Reference"]

HOSTILE = """\
apiVersion: obsgen/v1
service:
  name: hostile
  team: sre
  description: "Service with <b>html</b> and {{ 7*7 }}"
caches:
  - name: evil_cache
    description: "{{ 7*7 }} *bold* <script>alert(1)</script> [x](http://e.example) `tick` {% if true %}yes{% endif %}"
    tiers:
      l1: {provider: "caffeine*", ttl: 5m, max_size: 100, labels: {layer: L1}}
      l2: {provider: redis, ttl: 10m, labels: {layer: L2}}
redis:
  - name: standalone
    topology: standalone
    port: 6380
"""


@pytest.fixture(scope="module")
def maple():
    return load(ROOT / "specs" / "maple.yaml")


@pytest.fixture(scope="module")
def maple_groups(maple):
    return build(maple).groups


@pytest.fixture(scope="module")
def pages(maple):
    return runbooks.render(build(maple))


def _alerts(groups) -> list[Alert]:
    return [r for g in groups for r in g.rules if isinstance(r, Alert)]


def _prose(text: str) -> str:
    """The page without fenced code blocks (rule YAML legitimately holds Prometheus `{{ $labels.x }}`)."""
    return re.sub(r"^[ ]*(`{3,})[^\n]*\n.*?^[ ]*\1[ ]*$", "", text, flags=re.S | re.M)


def test_every_alert_has_a_page_and_an_index_row(maple_groups, pages):
    names = {a.name for a in _alerts(maple_groups)}
    assert names, "maple must emit alerts"
    index = pages[f"{SERVICE}/runbooks/README.md"]
    for name in names:
        assert f"{SERVICE}/runbooks/{name}.md" in pages
        assert f"| [{name}]({name}.md) |" in index
    # nothing but alert pages and the index
    assert set(pages) == {f"{SERVICE}/runbooks/{n}.md" for n in names} | {f"{SERVICE}/runbooks/README.md"}


def test_each_rule_runbook_url_resolves_to_a_generated_page(maple_groups, pages):
    rules_dir = posixpath.dirname(f"{SERVICE}/prometheus/rules.yaml")
    for alert in _alerts(maple_groups):
        target = posixpath.normpath(posixpath.join(rules_dir, alert.runbook_url))
        assert target in pages, (alert.name, alert.runbook_url)


def test_a_page_lists_every_rule_of_its_name_with_component_threshold_for_and_promql(maple_groups, pages):
    page = pages[f"{SERVICE}/runbooks/CacheHitRateLow.md"]
    rules = [a for a in _alerts(maple_groups) if a.name == "CacheHitRateLow"]
    assert len(rules) == 8  # four caches, two tiers each
    meaning = page.split("## What it means")[1].split("## First checks")[0]
    assert "<details><summary>When each of its 8 rules fires</summary>" in meaning  # more than four: folded
    for a in rules:
        component, tier = a.labels["component"], a.labels["tier"]
        threshold, for_ = (90, "5m") if tier == "L2" else (80, "15m")  # an L1 restarts empty with its process
        assert re.search(rf"\| Cache `{component}` \({tier}\) \| hit ratio below {threshold}%"
                         rf".*\| `{for_}` \| warning \|", meaning), (component, tier)
        assert render(a.expr).splitlines()[0] in page
    assert "cache `equipment` (Nexon API equipment data); L1 Caffeine, 5m TTL, 5,000 entries" in page


def test_every_relative_link_resolves_to_a_generated_file(pages):
    link = re.compile(r"\]\(([^)\s]+)\)")
    for path, text in pages.items():
        for target in link.findall(_prose(text)):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            if target.startswith("../dashboards/"):
                continue  # the dashboards folder is another renderer's output (tests/test_links.py)
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            assert resolved in pages, (path, target)


def test_related_alerts_link_only_pages_this_service_has(pages):
    l2 = pages[f"{SERVICE}/runbooks/CacheL2Unavailable.md"]
    assert "[RedisDown](RedisDown.md)" in l2.split("## Reference")[1]
    breaker = pages[f"{SERVICE}/runbooks/CircuitBreakerOpen.md"].split("## Reference")[1]
    assert "[RetryExhaustionHigh](RetryExhaustionHigh.md)" in breaker
    assert "[TimeLimiterTimeoutsHigh](TimeLimiterTimeoutsHigh.md)" in breaker
    # maple has no cluster: no link to a cluster page anywhere
    assert all("RedisClusterStateFail.md" not in t for t in pages.values())


@pytest.mark.parametrize("alert", ["RedisSentinelQuorumAtRisk", "RedisSentinelFailover"])
def test_sentinel_pages_name_this_deployment_concretely(pages, alert):
    page = pages[f"{SERVICE}/runbooks/{alert}.md"]
    assert "mymaster" in page
    assert "quorum 2" in page
    assert "3 sentinels" in page
    # the spec's sentinels, asked where the master is now; no command names a port (a failover moves the master)
    assert "SENTINELS='172.20.0.10:26379 172.20.0.10:26380 172.20.0.10:26381'" in page
    assert 'redis-cli -u "redis://${SENTINEL:?no sentinel answers}" SENTINEL get-master-addr-by-name mymaster' in page
    assert 'redis-cli -u "redis://${MASTER:?no master named}" INFO replication' in page
    assert "redis-cli -p" not in page
    for placeholder in ("<host>", "<port>", "<master", "TODO", "TBD", "XXX", "None", "master_name>"):
        assert placeholder not in page, placeholder


def test_pages_have_all_sections_in_order_rendered_and_none_empty(pages):
    for path, text in pages.items():
        if path.endswith("README.md"):
            continue
        name = posixpath.basename(path)[:-3]
        assert text.startswith(f"<!-- BEGIN GENERATED: header -->\n# {name}\n"), path
        positions = [text.index(f"\n## {s}\n") for s in SECTIONS]
        assert positions == sorted(positions), path
        assert "{%" not in text and "{{" not in _prose(text), path
        # a heading must be followed by content before the next heading (markers and blank lines don't count)
        content = [line for line in text.splitlines() if line.strip() and not line.startswith("<!--")]
        for here, after in zip(content, content[1:]):
            assert not (here.startswith("#") and after.startswith("#")), (path, here)
        assert text.endswith("\n") and not text.endswith("\n\n")


def test_mitigation_steps_say_how_to_confirm_and_mark_destructive_ones(pages):
    for name in ("RedisDown", "CacheL2Unavailable", "ExecutorQueueFull", "CircuitBreakerOpen"):
        mitigation = pages[f"{SERVICE}/runbooks/{name}.md"].split("## Mitigation")[1].split("## Escalation")[0]
        steps = re.split(r"\n(?=\d+\. )", mitigation.strip())[1:]
        assert steps, name
        assert all("Confirm:" in s for s in steps), name
        assert "**(destructive)**" in mitigation, name


def test_generated_sections_are_between_balanced_markers(pages):
    for path, text in pages.items():
        begins = re.findall(r"<!-- BEGIN GENERATED: ([\w.-]+) -->", text)
        ends = re.findall(r"<!-- END GENERATED: ([\w.-]+) -->", text)
        assert begins and begins == ends and len(set(begins)) == len(begins), path
        outside = re.sub(r"<!-- BEGIN GENERATED: ([\w.-]+) -->.*?<!-- END GENERATED: \1 -->", "", text, flags=re.S)
        assert not outside.strip(), path


def test_render_is_deterministic(maple):
    first = runbooks.render(build(maple))
    second = runbooks.render(build(load(ROOT / "specs" / "maple.yaml")))
    assert first == second
    assert list(first) == sorted(first)


def test_merge_keeps_human_notes_and_restores_generated_text(pages):
    generated = pages[f"{SERVICE}/runbooks/RedisDown.md"]
    note = "\n\n## Team notes\n\nCall Alice before restarting the master; she owns the host.\n"
    head_note = "Hand-written preface.\n\n"
    # a human adds a preface, a note after the Diagnosis block and at the end, and edits a generated block
    existing = head_note + generated.replace(
        "<!-- END GENERATED: diagnosis -->", "<!-- END GENERATED: diagnosis -->" + note, 1
    ) + "\nFinal human words.\n"
    existing = existing.replace("Check that clients reconnected or fell back", "SOMEONE EDITED THIS")
    merged = runbooks.merge(existing, generated)
    assert "SOMEONE EDITED THIS" not in merged
    assert "Check that clients reconnected or fell back" in merged
    assert merged.startswith(head_note)
    assert "<!-- END GENERATED: diagnosis -->" + note + "\n\n<!-- BEGIN GENERATED: mitigation -->" in merged
    assert merged.endswith("<!-- END GENERATED: reference -->\n\nFinal human words.\n")
    # a second rebuild changes nothing; merging into an untouched page gives the page
    assert runbooks.merge(merged, generated) == merged
    assert runbooks.merge(generated, generated) == generated


def test_merge_updates_blocks_when_the_spec_changes(maple, pages):
    old = pages[f"{SERVICE}/runbooks/RedisSentinelQuorumAtRisk.md"]
    existing = old.replace("<!-- END GENERATED: impact -->", "<!-- END GENERATED: impact -->\n\nKeep me.", 1)
    text = (ROOT / "specs" / "maple.yaml").read_text()
    changed = parse(text.replace("quorum: 2", "quorum: 3"), "maple.yaml")
    new = runbooks.render(build(changed))[f"{SERVICE}/runbooks/RedisSentinelQuorumAtRisk.md"]
    merged = runbooks.merge(existing, new)
    assert "quorum 3" in merged and "quorum 2" not in merged
    assert "<!-- END GENERATED: impact -->\n\nKeep me.\n\n<!-- BEGIN GENERATED: diagnosis -->" in merged


def test_merge_leaves_hand_written_pages_alone_and_refuses_broken_markers(pages):
    hand = "# RedisDown\n\nOur own page, no markers.\n"
    assert runbooks.merge(hand, pages[f"{SERVICE}/runbooks/RedisDown.md"]) == hand
    broken = pages[f"{SERVICE}/runbooks/RedisDown.md"].replace("<!-- END GENERATED: impact -->", "", 1)
    with pytest.raises(ValueError):
        runbooks.merge(broken, pages[f"{SERVICE}/runbooks/RedisDown.md"])


def test_markdown_and_jinja_in_spec_text_are_escaped_not_evaluated():
    spec = parse(HOSTILE, "x.yaml")
    out = runbooks.render(build(spec))
    page = out["hostile/runbooks/CacheHitRateLow.md"]
    assert r"\{\{ 7\*7 \}\} \*bold\* \<script\>alert(1)\</script\> \[x\](http://e.example) \`tick\`" in page
    assert r"\{% if true %\}yes\{% endif %\}" in page
    assert "49" not in page and "<script>" not in page and "*bold*" not in page
    assert "Caffeine\\*" in page
    assert r"\<b\>html\</b\>" in out["hostile/runbooks/README.md"]
    for text in out.values():
        assert "<script>" not in text and "{{ 7*7 }}" not in text
    # component names go into code spans verbatim (the schema allows `_`): no escaping inside backticks
    assert "`evil_cache`" in page


def test_standalone_redis_gets_standalone_commands():
    spec = parse(HOSTILE, "x.yaml")
    out = runbooks.render(build(spec))
    page = out["hostile/runbooks/RedisDown.md"]
    guarded = '"${INSTANCE:?set it to the alert label instance}"'
    assert f'redis-cli -u {guarded} PING' in page and "-p 6380" not in page
    assert f'redis-cli -u {guarded} INFO memory' in out["hostile/runbooks/RedisMemoryHigh.md"]
    assert "SENTINEL" not in page
    assert "RedisSentinelFailover" not in page  # no sentinel page for a standalone server, so no link


def test_fences_grow_around_backticks_and_shell_words_are_quoted():
    assert runbooks.fenced("a ``` b", "promql") == "````promql\na ``` b\n````"
    assert runbooks.sh("my master") == "'my master'"
    assert "`" not in runbooks.sh("x`y")
    assert runbooks.code("a`b") == "``a`b``"


@pytest.mark.parametrize("path", VALID_SPECS, ids=lambda p: p.stem)
def test_small_specs_get_a_complete_page_per_alert_with_confirmed_mitigations(path):
    spec = load(path)
    groups = build(spec).groups
    small = runbooks.render(build(spec))
    service = spec.service.name
    assert set(small) == {f"{service}/runbooks/{a.name}.md" for a in _alerts(groups)} | {f"{service}/runbooks/README.md"}
    test_pages_have_all_sections_in_order_rendered_and_none_empty(small)
    test_every_relative_link_resolves_to_a_generated_file(small)
    test_generated_sections_are_between_balanced_markers(small)
    for page, text in small.items():
        if page.endswith("README.md"):
            continue
        mitigation = text.split("## Mitigation")[1].split("## Escalation")[0]
        steps = re.split(r"\n(?=\d+\. )", mitigation.strip())[1:]
        assert steps and all("Confirm:" in s for s in steps), page


def test_pages_of_the_new_alerts_carry_the_seed_findings_and_this_spec_s_numbers():
    spec = load(ROOT / "tests/specs/valid/python-resilience.yaml")
    page = runbooks.render(build(spec))["py-resilience/runbooks/CircuitBreakerNotOpening.md"]
    assert "`terminus_db`: opens at 20% failed calls once it has seen 3 calls" in page
    assert "0 closed, 1 half-open, 2 open" in page  # the python breaker's enum state, not one series per state
    etag = load(ROOT / "tests/specs/valid/etag-python.yaml")
    page = runbooks.render(build(etag))["py-etags/runbooks/ETagNeverNotModified.md"]
    assert 'etag_requests_total{job="py-etags", resource_type=~"object-types|object-type", result="hit"}' in page
    assert "If-None-Match: $TAG" in page
    http = load(ROOT / "tests/specs/valid/http-python.yaml")
    page = runbooks.render(build(http))["fastapi-http/runbooks/HttpLatencyHigh.md"]
    assert re.search(r"\| HTTP server `api`[^|]*\| every other route: p99 latency above 2s", page)


# --------------------------------------------------------------------------- every spec, every kind

# Kinds whose every mitigation step says how to confirm it (older pages keep some advice-only steps).
CONFIRMED = ("Backpressure", "RateLimiter", "Lock", "DbPool")


@pytest.mark.parametrize("path", SPECS + VALID_SPECS, ids=lambda p: p.stem)
def test_every_spec_gets_a_complete_linked_page_per_alert(path):
    spec = load(path)
    groups = build(spec).groups
    out = runbooks.render(build(spec))
    base = f"{spec.service.name}/runbooks"
    names = {a.name for a in _alerts(groups)}
    assert set(out) == {f"{base}/{n}.md" for n in names} | {f"{base}/README.md"}
    link = re.compile(r"\]\(([^)\s]+)\)")
    for page_path, text in out.items():
        for target in link.findall(_prose(text)):
            if not (re.match(r"^[a-z]+:", target) or target.startswith(("#", "../dashboards/"))):
                assert posixpath.normpath(posixpath.join(base, target)) in out, (page_path, target)
        if page_path.endswith("README.md"):
            continue
        assert [text.index(f"\n## {s}\n") for s in SECTIONS] == sorted(text.index(f"\n## {s}\n") for s in SECTIONS)
        assert "{%" not in text and "{{" not in _prose(text), page_path
        content = [line for line in text.splitlines() if line.strip() and not line.startswith("<!--")]
        assert not any(a.startswith("#") and b.startswith("#") for a, b in zip(content, content[1:])), page_path
        mitigation = text.split("## Mitigation")[1].split("## Escalation")[0]
        steps = re.split(r"\n(?=\d+\. )", mitigation.strip())[1:]
        assert steps, page_path
        if posixpath.basename(page_path).startswith(CONFIRMED):
            assert all("Confirm:" in s for s in steps), page_path
        for placeholder in (r"\bTODO\b", r"\bTBD\b", r"\bXXX\b", r"\bNone\b", "<host>"):  # If-None-Match is fine
            assert not re.search(placeholder, _prose(text).replace("If-None-Match", "")), (page_path, placeholder)


_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OPERATORS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
              "offset", "inf", "nan"}


def _bare_selectors(query: str) -> list[str]:
    """Metric names a PromQL query selects with no matcher at all (``redis_up``): strings, matchers, ranges and
    grouping label lists set aside, a name followed by neither ``(`` (a function) nor ``{``."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', query)
    text = _GROUPING.sub(" ", re.sub(r"\[[^\]]*\]", "[]", re.sub(r"\{[^}]*\}", "{}", text)))
    return [m.group(1) for m in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*[({])", text)
            if m.group(1).lower() not in _OPERATORS]


def test_the_bare_selector_lint_sees_an_unscoped_query():
    assert _bare_selectors("redis_up") == ["redis_up"]
    assert _bare_selectors('sum by (instance) (rate(x_total{job="a"}[5m])) unless on (instance) y') == ["y"]
    assert _bare_selectors('max(up{job="a", x="b{c}"}) == 0 and on (job) vector(1)') == []


@pytest.mark.parametrize("path", SPECS + VALID_SPECS, ids=lambda p: p.stem)
def test_every_runbook_query_reads_only_this_service_s_series(path):
    """A query without a matcher lists every team's series in a shared Prometheus (the cache page once told
    on-call to run a bare ``redis_up``): each one names its job, service or component."""
    out = runbooks.render(build(load(path)))
    for page, text in out.items():
        for query in re.findall(r"```promql\n(.*?)```", text, re.S):
            assert not _bare_selectors(query), (page, query)


def test_lock_page_gives_maples_redis_commands_and_rollback_trigger(pages):
    page = pages[f"{SERVICE}/runbooks/LockAcquireLatencyHigh.md"]
    assert "redis-cli -u redis://<master> --scan --pattern \"$pattern\" | head -20" in page
    assert "for pattern in 'cache:sf:*'; do" in page
    assert "redis-cli -u redis://<master> SLOWLOG GET 10" in page
    assert "`<master>` is the current Redis master's `host:port`" in page  # where the placeholder's value comes from
    assert "roll back to the MySQL named lock (ADR-310)" in page
    assert "p95 acquire limit 100ms (objective 10ms)" in page


def test_pool_page_queries_the_database_it_names(spec_from):
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: s, team: t, profile: python}\n"
                     "db_pools: [{name: main, pool_size: 5, max_overflow: 10, database: postgresql}]\n")
    page = runbooks.render(build(spec))["s/runbooks/DbPoolExhausted.md"]
    assert "FROM pg_stat_activity" in page and "SHOW FULL PROCESSLIST" not in page
    assert "pool `main`: 5 connections + 10 overflow = 15 at most" in page
    assert "1. Connections checked out per instance against each pool's maximum" in page


def test_a_page_reading_another_component_s_metric_names_its_publisher(pages):
    """ComponentMetricsMissing reads the service's `up` beside the watched components' metrics: `up` is
    Prometheus' own, not something the application must register."""
    reference = pages[f"{SERVICE}/runbooks/ComponentMetricsMissing.md"].split("## Reference")[1]
    assert "- `up`: published by Prometheus itself" in reference
    assert "- `resilience4j_circuitbreaker_state`: published by resilience4j-micrometer" in reference


def test_a_list_holding_a_link_joins_to_a_working_link_and_plain_lists_join_unescaped():
    """A runbook link put in a list and joined (``found|join(" or ")``) used to come out as the literal text
    ``\\[CircuitBreakerOpen\\](CircuitBreakerOpen.md)``: the finalizer escaped the plain string join made."""
    env = runbooks._env()
    link = runbooks.Safe("[CircuitBreakerOpen](CircuitBreakerOpen.md)")
    text = env.from_string('{{ [link, "a_b"]|join(" or ") }} | {{ ["x_1", "y*"]|join(",")|fenced }}').render(link=link)
    assert text.startswith("[CircuitBreakerOpen](CircuitBreakerOpen.md) or a\\_b | ")
    assert "x_1,y*" in text  # joined for a code block: not escaped




@pytest.mark.parametrize("topology, node", [("standalone", "server"), ("sentinel", "master"), ("cluster", "master")])
def test_the_cache_page_deletes_its_keys_where_the_topology_keeps_them(topology, node):
    """A standalone server has no master to find; a cluster spreads the keys over its masters, and one UNLINK
    cannot take keys of different hash slots (CROSSSLOT). tests/e2e/test_cache_keys_live.py runs the commands."""
    extra = "    master_name: mymaster\n    quorum: 2\n    sentinels: 3\n    replicas: 1\n" if topology == "sentinel" else ""
    page = runbooks.render(build(parse(CACHE_ON_REDIS.format(topology=topology) + extra, "x.yaml")))[
        "store/runbooks/CacheL2Unavailable.md"]
    scan = f"redis-cli -u redis://<{node}> --scan --pattern 'cache:*' | "
    unlink = (f"redis-cli -u redis://<{node}> --pipe" if topology == "cluster" else
              f"xargs -r -d '\\n' -n 500 redis-cli -u redis://<{node}> UNLINK")
    assert re.search(re.escape(scan) + ".*" + re.escape(unlink), page)
    assert ("<master>" in page) == (topology != "standalone")
    assert ("every master" in page) == (topology == "cluster")
    assert ("SENTINEL get-master-addr-by-name mymaster" in page) == (topology == "sentinel")
