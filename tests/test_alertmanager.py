"""The Alertmanager snippet: a valid config once pasted under a root route (amtool check-config), routing each
severity to its receiver (amtool config routes test), inhibit rules only for alerts the service emits with the
labels they compare, and the inhibitions working in a real Alertmanager."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, SPECS, VALID_SPECS, all_rule_groups, load_spec, output_sets, rendered, tool
from obsgen import pipeline
from obsgen.model.labels import carried
from obsgen.model.rules import Inhibition
from obsgen.render import alertmanager

FLEET = ROOT / "tests" / "specs" / "valid" / "fleet-multicluster.yaml"
ANIVAULT = ROOT / "specs" / "anivault.yaml"
DEFAULT = "platform-default"


outputs = rendered


def snippet(spec) -> dict:
    return yaml.safe_load(outputs(spec)[f"{spec.service.name}/{alertmanager.FILE}"])


def full_config(*snippets: dict) -> dict:
    """What a platform team has after pasting: its root route and receivers, plus each service's snippet."""
    names = {r["receiver"] for s in snippets for route in s["routes"] for r in route["routes"]}
    return {
        "route": {"receiver": DEFAULT, "group_by": ["alertname"], "routes": [r for s in snippets for r in s["routes"]]},
        "receivers": [{"name": n} for n in [DEFAULT, *sorted(names)]],
        "inhibit_rules": [rule for s in snippets for rule in s["inhibit_rules"]],
    }


def write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("amtool"), *args], capture_output=True, text=True, timeout=60)


def receiver_of(config: Path, **labels: str) -> str:
    result = amtool("config", "routes", "test", f"--config.file={config}", *(f"{k}={v}" for k, v in labels.items()))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def fleet():
    return load_spec(FLEET)


@pytest.mark.parametrize("path", SPECS + VALID_SPECS, ids=lambda p: p.stem)
def test_snippet_under_a_root_route_passes_amtool_check_config(path, tmp_path):
    config = write(tmp_path, full_config(snippet(load_spec(path))))
    result = amtool("check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_snippets_of_several_services_paste_into_one_config(maple, fleet, tmp_path):
    config = write(tmp_path, full_config(snippet(maple), snippet(fleet)))
    assert amtool("check-config", str(config)).returncode == 0
    assert receiver_of(config, service="checkout", team="payments", severity="critical", cluster="eu-west-1",
                       alertname="RedisDown") == "payments-pagerduty"
    assert receiver_of(config, service="checkout", team="payments", severity="warning") == "payments-slack"
    assert receiver_of(config, service="maple-expectation", team="sre", severity="critical") == "sre-pager"


def test_critical_pages_warning_tickets_and_the_rest_falls_through(maple, tmp_path):
    config = write(tmp_path, full_config(snippet(maple)))
    common = {"service": "maple-expectation", "team": "sre", "component": "main"}
    assert receiver_of(config, alertname="RedisDown", severity="critical", **common) == "sre-pager"
    assert receiver_of(config, alertname="RedisMemoryHigh", severity="warning", **common) == "sre-tickets"
    assert receiver_of(config, alertname="RedisMemoryHigh", severity="info", **common) == DEFAULT
    assert receiver_of(config, alertname="RedisDown", severity="critical", service="other", team="sre") == DEFAULT
    verified = amtool("config", "routes", "test", f"--config.file={config}", "--verify.receivers=sre-pager",
                      "service=maple-expectation", "team=sre", "severity=warning")
    assert verified.returncode != 0  # amtool's own check notices a wrong receiver


def test_route_groups_by_alert_service_and_component_and_cluster_when_set(maple, fleet):
    (route,) = snippet(maple)["routes"]
    assert route["matchers"] == ['service="maple-expectation"', 'team="sre"']
    assert route["group_by"] == ["alertname", "service", "component"]
    (route,) = snippet(fleet)["routes"]
    assert route["group_by"] == ["alertname", "service", "component", "cluster"]


def test_receivers_default_to_team_pager_and_tickets_and_info_can_be_routed(spec_from):
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: shop, team: web, alertmanager: {receivers: {info: web-log}}}\n"
                     "executors: [{name: p, queue_capacity: 5}]\n")
    (route,) = snippet(spec)["routes"]
    assert [(r["matchers"], r["receiver"]) for r in route["routes"]] == [
        (['severity="critical"'], "web-pager"), (['severity="warning"'], "web-tickets"), (['severity="info"'], "web-log")]


# --------------------------------------------------------------------------- inhibitions, by structure

def rule_alerts(spec) -> dict[str, list[dict]]:
    """Alert name → the labels of every rule of that name in the plain rule file."""
    rules = all_rule_groups(outputs(spec), spec.service.name)
    out: dict[str, list[dict]] = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                out.setdefault(rule["alert"], []).append(rule["labels"])
    return out


def parsed(rule: dict) -> tuple[str, list[str], list[str]]:
    (source,) = [re.fullmatch(r'alertname="(\w+)"', m).group(1) for m in rule["source_matchers"] if "alertname" in m]
    (targets,) = [re.fullmatch(r'alertname=~"([\w|]+)"', m).group(1).split("|")
                  for m in rule["target_matchers"] if "alertname" in m]
    return source, targets, rule["equal"]


@pytest.mark.parametrize("path", SPECS + VALID_SPECS, ids=lambda p: p.stem)
def test_every_inhibition_names_emitted_alerts_that_carry_the_compared_labels(path):
    """A compared label is a static label of the rule or one its expression's result keeps (``by (instance)``)."""
    spec = load_spec(path)
    carries: dict[str, list[set[str]]] = {}
    for alert in pipeline.build(spec).alerts:
        carries.setdefault(alert.name, []).append({*alert.labels, *carried(alert.expr)})
    for rule in snippet(spec)["inhibit_rules"]:
        source, targets, equal = parsed(rule)
        compared = {label for label in equal if label != spec.service.cluster_label}  # the cluster: from series
        assert source in carries and all(compared <= labels for labels in carries[source]), rule
        for target in targets:
            assert target in carries and any(compared <= labels for labels in carries[target]), (rule, target)
        scope = f'service="{spec.service.name}"'
        assert scope in rule["source_matchers"] and scope in rule["target_matchers"]


def test_a_declared_inhibition_more_severe_than_its_cause_is_not_written_and_the_routes_file_says_so():
    """AniVault's breaker has a fallback and opens as a warning: the health kind declares it holds back the
    failing check tied to it (critical), which a warning must not silence. No rule, and a comment naming it."""
    spec = load_spec(ANIVAULT)
    rules = [parsed(r) for r in snippet(spec)["inhibit_rules"]]
    assert not any(source == "CircuitBreakerOpen" and "HealthCheckFailing" in targets for source, targets, _ in rules)
    text = outputs(spec)[f"anivault/{alertmanager.FILE}"]
    assert ("# Not written: a cause never silences a symptom more severe than itself, so CircuitBreakerOpen (warning)"
            " does not\n# hold back HealthCheckFailing (critical); both notify.") in text


def test_a_failing_health_check_holds_back_the_degraded_mode_it_switched_on_for_that_instance():
    """The inhibition health checks declare compares `instance`, a label of the alerts' series, not of their
    rules: it is written (it was once dropped silently)."""
    rules = [parsed(r) for r in snippet(load_spec(ANIVAULT))["inhibit_rules"]]
    assert ("HealthCheckFailing", ["DegradedModeActive"], ["service", "component", "instance"]) in rules


def test_an_inhibition_the_alerts_cannot_carry_fails_the_build_naming_it():
    """A kind declaring an inhibition on a label its alerts never carry is a bug: the build stops, never drops it."""
    model = pipeline.build(load_spec(ANIVAULT))
    broken = Inhibition("HealthCheckFailing", ("DegradedModeActive",), ("service", "pod"))
    health = next(c for c in model.components if c.kind == "health_checks")
    components = tuple(replace(c, inhibitions=(broken,)) if c is health else c for c in model.components)
    with pytest.raises(alertmanager.DroppedInhibition, match="HealthCheckFailing -> DegradedModeActive.*lacks pod"):
        alertmanager.inhibit_rules(replace(model, components=components))


def test_maple_inhibits_cache_and_replication_symptoms_of_redis_and_the_calls_behind_an_open_breaker(maple):
    rules = {parsed(r)[0]: parsed(r)[1:] for r in snippet(maple)["inhibit_rules"]}
    assert rules == {
        # every instance down: the one-instance alert and the components' missing metrics say nothing new
        "ServiceDown": (["ComponentMetricsMissing", "InstanceDown"], ["service"]),
        "RedisDown": (["CacheL2Unavailable", "RedisNoHealthyReplica", "RedisReplicationBroken"], ["service"]),
        "RedisSentinelQuorumAtRisk": (["RedisSentinelDown"], ["service", "component"]),
        "CircuitBreakerOpen": (["CircuitBreakerFailureRateHigh", "RetryExhaustionHigh", "TimeLimiterTimeoutsHigh"],
                               ["service", "breaker"]),
        # the fast burn already pages for the budget the slow burn would ticket
        "ErrorBudgetBurnFast": (["ErrorBudgetBurnSlow"], ["service", "slo"]),
    }


def test_inhibitions_only_for_alerts_the_service_emits(spec_from):
    spec = spec_from("""
apiVersion: obsgen/v1
service: {name: shop, team: web}
caches: [{name: products}]
breakers: [{name: payments}]
retries: [{name: payments}]
redis: [{name: cache, topology: standalone}]
""")
    # no L2 tier: no CacheL2Unavailable; no replicas: no replication alerts; a retry without `breaker` has no
    # breaker label, so an open breaker cannot be told to silence it.
    rules = {parsed(r)[0]: parsed(r)[1] for r in snippet(spec)["inhibit_rules"]}
    assert rules == {"CircuitBreakerOpen": ["CircuitBreakerFailureRateHigh"],
                     "ServiceDown": ["ComponentMetricsMissing", "InstanceDown"]}
    no_redis = spec_from("apiVersion: obsgen/v1\nservice: {name: shop, team: web}\nexecutors: [{name: p, queue_capacity: 5}]\n")
    assert [parsed(r)[0] for r in snippet(no_redis)["inhibit_rules"]] == ["ServiceDown"]


FALLBACK = """
apiVersion: obsgen/v1
service: {name: parcel, team: web}
breakers:
  - name: carrierApi
    fallback: the last known tracking status
http:
  - name: api
    breaker: carrierApi
"""


def test_a_cause_never_silences_a_symptom_more_severe_than_itself(spec_from):
    """A breaker with a fallback opens as a warning (a ticket): its failure-rate ticket is silenced, a latency
    alert the spec made a page is not."""
    (rule,) = [r for r in snippet(spec_from(FALLBACK))["inhibit_rules"] if parsed(r)[0] == "CircuitBreakerOpen"]
    assert parsed(rule)[1] == ["CircuitBreakerFailureRateHigh", "HttpLatencyHigh"]
    paged = FALLBACK + "    alerts: {HttpLatencyHigh: {severity: critical}}\n"
    (rule,) = [r for r in snippet(spec_from(paged))["inhibit_rules"] if parsed(r)[0] == "CircuitBreakerOpen"]
    assert parsed(rule)[1] == ["CircuitBreakerFailureRateHigh"]
    assert 'severity="warning"' in rule["source_matchers"] and 'severity=~"warning|info"' in rule["target_matchers"]
    # without a fallback the open breaker pages: one rule, and the routes' 5xx page too (the outage users see)
    (paging,) = [r for r in snippet(spec_from(FALLBACK.replace("    fallback: the last known tracking status\n", "")))[
        "inhibit_rules"] if parsed(r)[0] == "CircuitBreakerOpen"]
    assert parsed(paging)[1] == ["CircuitBreakerFailureRateHigh", "HttpLatencyHigh"]
    assert not any("severity" in m for m in paging["source_matchers"] + paging["target_matchers"])


def test_inhibitions_compare_the_cluster_when_set(fleet):
    for rule in snippet(fleet)["inhibit_rules"]:
        assert rule["equal"][-1] == "cluster"


# --------------------------------------------------------------------------- inhibitions in a real Alertmanager

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, path: str, body: object | None = None) -> object:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read()
    return json.loads(text) if text else None


def _alert(name: str, **labels: str) -> dict:
    return {"labels": {"alertname": name, **labels}}


@contextlib.contextmanager
def running_alertmanager(config: Path, tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on a free port with ``config``: its base URL."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([tool("prometheus-alertmanager"), f"--config.file={config}",
                               f"--storage.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                               "--cluster.listen-address="], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{base}/-/ready", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "alertmanager did not start"
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def inhibited(base: str, sent: dict[str, tuple[dict, bool]]) -> tuple[dict[str, bool], dict[str, bool]]:
    """Post ``sent`` (slug → (alert, expected inhibited)); (what Alertmanager says, what was expected), once they
    agree or after 20 s."""
    _api(base, "/api/v2/alerts", [alert for alert, _ in sent.values()])
    expected = {slug: inhibited for slug, (_, inhibited) in sent.items()}
    by_labels = {json.dumps(alert["labels"], sort_keys=True): slug for slug, (alert, _) in sent.items()}
    deadline = time.monotonic() + 20
    while True:
        seen = {by_labels[json.dumps(a["labels"], sort_keys=True)]: bool(a["status"]["inhibitedBy"])
                for a in _api(base, "/api/v2/alerts")}  # type: ignore[union-attr]
        if seen == expected or time.monotonic() > deadline:
            return seen, expected
        time.sleep(0.2)


@pytest.mark.e2e
def test_a_real_alertmanager_silences_symptoms_of_the_same_service_breaker_and_cluster(maple, fleet, spec_from,
                                                                                       tmp_path):
    config = write(tmp_path, full_config(snippet(maple), snippet(fleet), snippet(spec_from(FALLBACK)),
                                         snippet(load_spec(ANIVAULT))))
    with running_alertmanager(config, tmp_path) as base:
        maple_labels = {"service": "maple-expectation", "team": "sre"}
        checkout = {"service": "checkout", "team": "payments"}
        parcel = {"service": "parcel", "team": "web"}
        anivault = {"service": "anivault", "team": "anivault"}
        database = {"component": "database", "breaker": "database", **anivault}
        disk = {"component": "disk", **anivault}
        sent = {
            # one database outage pages once: the breaker has a fallback (cache-only mode) and opens as a warning,
            # which holds back the mode and the retries but never the failing check's page. A stuck recovery is
            # another failure: it pages.
            "db-breaker-open": (_alert("CircuitBreakerOpen", severity="warning", **database), False),
            "db-check-failing": (_alert("HealthCheckFailing", severity="critical", check="database", instance="a:1",
                                        **database), False),
            "db-cache-only": (_alert("DegradedModeActive", severity="warning", mode="cache_only", instance="a:1",
                                     **database), True),
            "db-retries-exhausted": (_alert("RetryExhaustionHigh", severity="warning", **database), True),
            "db-not-recovering": (_alert("DegradedModeNotRecovering", severity="critical", mode="cache_only",
                                         instance="b:1", **database), False),
            # a failing check without a breaker pages; the mode it switched on, on that instance only, is quiet
            "check-failing": (_alert("HealthCheckFailing", severity="critical", check="disk", instance="a:1", **disk),
                              False),
            "mode-same-instance": (_alert("DegradedModeActive", severity="warning", mode="read_only", instance="a:1",
                                          **disk), True),
            "mode-other-instance": (_alert("DegradedModeActive", severity="warning", mode="read_only",
                                           instance="b:1", **disk), False),
            "redis-down": (_alert("RedisDown", severity="critical", component="main", **maple_labels), False),
            "l2-same-service": (_alert("CacheL2Unavailable", severity="warning", component="equipment",
                                       **maple_labels), True),
            "breaker-open": (_alert("CircuitBreakerOpen", severity="critical", component="nexonApi",
                                    breaker="nexonApi", **maple_labels), False),
            "retry-same-breaker": (_alert("RetryExhaustionHigh", severity="warning", component="nexonApi",
                                          breaker="nexonApi", **maple_labels), True),
            "retry-other-breaker": (_alert("RetryExhaustionHigh", severity="warning", component="otherApi",
                                           breaker="otherApi", **maple_labels), False),
            "l2-other-service": (_alert("CacheL2Unavailable", severity="warning", component="carts",
                                        cluster="us-east-1", **checkout), False),
            "checkout-redis-down": (_alert("RedisDown", severity="critical", component="main",
                                           cluster="eu-west-1", **checkout), False),
            "checkout-l2-same-cluster": (_alert("CacheL2Unavailable", severity="warning", component="sessions",
                                                cluster="eu-west-1", **checkout), True),
            # a dead replica is no outage: it silences nothing (l2-other-service, of its cluster, stays)
            "checkout-replica-down": (_alert("RedisReplicaDown", severity="warning", component="main",
                                             cluster="us-east-1", **checkout), False),
            # a sentinel short of the quorum is the news; one of them down is part of it, for that Redis only
            "quorum-at-risk": (_alert("RedisSentinelQuorumAtRisk", severity="warning", component="main",
                                      **maple_labels), False),
            "sentinel-down-same-redis": (_alert("RedisSentinelDown", severity="warning", component="main",
                                                **maple_labels), True),
            "sentinel-down-other-redis": (_alert("RedisSentinelDown", severity="warning", component="other",
                                                 **maple_labels), False),
            # a breaker with a fallback opens as a warning: it silences tickets, never the 5xx page behind it
            "fallback-open": (_alert("CircuitBreakerOpen", severity="warning", component="carrierApi",
                                     breaker="carrierApi", **parcel), False),
            "fallback-5xx-page": (_alert("HttpErrorRateHigh", severity="critical", component="api",
                                         breaker="carrierApi", **parcel), False),
            "fallback-latency-ticket": (_alert("HttpLatencyHigh", severity="warning", component="api",
                                               breaker="carrierApi", **parcel), True),
        }
        seen, expected = inhibited(base, sent)
        assert seen == expected


@pytest.mark.e2e
def test_a_real_alertmanager_pages_an_audit_service_outage_once(tmp_path):
    """Audit service down: connection refused fails the detailed check's probe (HealthCheckFailing) and silences
    the liveness check (HealthCheckSilent); ServiceDown is the one page. Another service's checks still page."""
    config = write(tmp_path, full_config(snippet(load_spec(ROOT / "specs" / "audit-service.yaml")),
                                         snippet(load_spec(ROOT / "specs" / "user-service.yaml"))))
    audit = {"service": "audit-service", "team": "compliance", "severity": "critical"}
    users = {"service": "user-service", "team": "identity", "severity": "critical"}
    with running_alertmanager(config, tmp_path) as base:
        seen, expected = inhibited(base, {
            "audit-down": (_alert("ServiceDown", **audit), False),
            "detailed-failing": (_alert("HealthCheckFailing", component="detailed", check="detailed",
                                        instance="http://audit-service:8092/health/detailed", **audit), True),
            "liveness-silent": (_alert("HealthCheckSilent", component="liveness", check="liveness", **audit), True),
            "users-liveness-silent": (_alert("HealthCheckSilent", component="liveness", check="liveness", **users),
                                      False),
        })
    assert seen == expected


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_pages_say_what_the_routes_hold_back_and_nothing_else(path):
    """Health and breaker pages describe inhibitions only from the rules the routes file writes (or withholds):
    every cause's page names what it holds back, every symptom's page the cause, and no page promises a rule the
    routes do not have (AniVault's HealthCheckFailing once said it was held back by CircuitBreakerOpen)."""
    for merged, _ in output_sets(load_spec(path)):
        model = pipeline.build(merged)
        pages = {p.rsplit("/", 1)[1][:-3]: t for p, t in rendered(merged).items() if "/runbooks/" in p}
        told = {(m.group(1), name) for name, text in pages.items()
                for m in re.finditer(r"^- Held back by Alertmanager while \[(\w+)\]", text, re.M)}
        untold = {(m.group(1), name) for name, text in pages.items()
                  for m in re.finditer(r"^- Not held back by \[(\w+)\]", text, re.M)}
        held = alertmanager.inhibitions(model)
        # the pages that tell inhibitions from the routes (the health checks' and CircuitBreakerOpen's)
        derived = {a.name for c in model.components for a in c.alerts
                   if (a.definition.template or c.kind) == "health_checks"}
        assert told == {(h.source, h.target) for h in held if h.written and h.target in derived}
        assert untold == {(h.source, h.target) for h in held if not h.written}
        for h in held:
            if h.source in derived | {"CircuitBreakerOpen"}:
                line = next(l for l in pages[h.source].splitlines()
                            if l.startswith("- While it fires, Alertmanager holds back" if h.written
                                            else "- It does not hold back"))
                assert f"[{h.target}]({h.target}.md)" in line, (h, line)
        assert not any("Held back while" in t for t in pages.values())


@pytest.mark.e2e
def test_a_real_alertmanager_holds_back_exactly_what_the_pages_say_for_every_committed_spec(tmp_path):
    """Each (cause, symptom) pair of every committed spec, fired together with the same compared labels: the
    symptom is inhibited when the pages say it is held back, and notifies when they say it is not. A cause compared
    on `service` alone (ServiceDown) holds back its symptoms of the whole service, the other pairs' among them: those
    pairs go to an Alertmanager of their own."""
    snippets, batches = [], ({}, {})  # service-wide pairs, pairs compared on more labels
    for n, path in enumerate(SPECS):
        for m, (merged, _) in enumerate(output_sets(load_spec(path))):
            snippets.append(snippet(merged))
            service = merged.service
            scope = {"service": service.name, "team": service.team,
                     **({"environment": service.environment} if service.environment else {})}
            for k, h in enumerate(alertmanager.inhibitions(pipeline.build(merged))):
                pair, sent = f"{service.name}-{m}-{k}", batches[h.equal != ("service",)]
                same = {label: pair for label in h.equal if label != "service"}
                cause = h.source_severity.split(", ")[0] if h.source_severity else "critical"
                symptom = h.severities[0] if h.written and h.severities else h.still[0] if h.still else "warning"
                sent[f"{pair}-cause"] = (_alert(h.source, severity=cause, pair=pair, **same, **scope), False)
                sent[f"{pair}-symptom"] = (_alert(h.target, severity=symptom, pair=pair, **same, **scope),
                                           h.written)
    for n, sent in enumerate(batches):
        folder = tmp_path / str(n)
        folder.mkdir()
        with running_alertmanager(write(folder, full_config(*snippets)), folder) as base:
            seen, expected = inhibited(base, sent)
        assert seen == expected
