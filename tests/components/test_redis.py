"""The Redis kind: which loss pages, what the sentinel alerts say, runbook queries that return the truth of a
known world, and runbook commands that find the master before they touch it. The rules are proven by their
generated promtool tests (and broken on purpose here to see those tests fail); the commands are run against live
servers in tests/e2e/redis_scenarios.py."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
import yaml

from conftest import ROOT, assert_mutation_caught, build_into, rendered, unit_test_entries
from obsgen.components import redis
from obsgen.model.promql import render
from obsgen.model.rules import Alert
from obsgen.pipeline import build
from obsgen.spec import load

from .runbook_pages import blocks, docs_rows, evaluate, pages, reference_metrics, section, steps

SERVICE = "maple-expectation"
REDIS_PAGES = ["RedisDown", "RedisReplicaDown", "RedisExporterDown", "RedisReplicationBroken", "RedisSentinelFailover",
               "RedisSentinelQuorumAtRisk", "RedisSentinelDown", "RedisNoHealthyReplica", "RedisMemoryHigh",
               "RedisRejectedConnections"]
BLOCK = re.compile(r"<!-- commands: redis (\S+) -->\n[ ]*```bash\n(.*?)\n[ ]*```", re.S)


@pytest.fixture(scope="module")
def maple_pages(maple):
    return pages(maple, redis.KIND)


def alerts(spec) -> list[Alert]:
    return list(build(spec).alerts)


def commands(page: str) -> list[str]:
    return [line.strip() for _, body in BLOCK.findall(page) for line in body.split("\n")
            if line.strip() and not line.strip().startswith("#")]


# -- what pages --------------------------------------------------------------------------------------

def test_only_the_master_loss_is_critical_and_only_it_silences_the_caches(maple):
    severity = {a.name: a.severity for a in alerts(maple) if a.name.startswith("Redis")}
    assert [name for name, s in severity.items() if s == "critical"] == ["RedisDown"]
    assert {severity[n] for n in ("RedisReplicaDown", "RedisSentinelDown", "RedisExporterDown",
                                  "RedisSentinelQuorumAtRisk", "RedisNoHealthyReplica")} == {"warning"}
    inhibit = yaml.safe_load(rendered(maple)[f"{SERVICE}/alertmanager/routes.yaml"])["inhibit_rules"]
    silencing_l2 = [r["source_matchers"][0] for r in inhibit if "CacheL2Unavailable" in r["target_matchers"][0]]
    assert silencing_l2 == ['alertname="RedisDown"']


def test_a_failover_needs_a_majority_of_the_sentinels_as_well_as_the_quorum(spec_from):
    spec = spec_from("""
apiVersion: obsgen/v1
service: {name: s, team: t}
redis:
  - {name: r, topology: sentinel, master_name: m, quorum: 1, replicas: 1,
     sentinel_addresses: ["10.0.0.5:26379", "10.0.0.6:26379", "10.0.0.7:26379"]}
""")
    by_name = {a.name: render(a.expr) for a in alerts(spec)}
    # quorum 1 calls the master down, but only 2 of 3 sentinels can authorise the failover
    assert by_name["RedisSentinelQuorumAtRisk"].startswith(
        'max by (master_name) (redis_sentinel_master_ok_sentinels{job="redis", master_name="m"}) < 2\n')
    assert by_name["RedisSentinelDown"].endswith(" < 3")


def test_sentinels_and_sentinel_port_alone_still_build_and_the_page_asks_for_the_addresses(spec_from):
    spec = spec_from("""
apiVersion: obsgen/v1
service: {name: s, team: t}
redis:
  - {name: r, topology: sentinel, master_name: m, sentinels: 3, quorum: 2, replicas: 1, sentinel_port: 26380}
""")
    assert "of 3 sentinels" in {a.name: a for a in alerts(spec)}["RedisSentinelDown"].description
    page = rendered(spec)["s/runbooks/RedisDown.md"]
    assert ('SENTINELS="${SENTINELS:?set SENTINELS to the host:port of every sentinel, space-separated '
            '(port 26380)}"') in commands(page)
    assert "26379" not in page


def test_quorum_at_risk_says_zero_sentinels_when_none_reports_the_master(tmp_path, maple):
    """The absent() branch used to read "1 healthy sentinel(s)" (absent's value): it is 0 sentinels now."""
    build_into(tmp_path, maple)
    prom = tmp_path / SERVICE / "prometheus"
    tests = unit_test_entries(prom)
    said = [a["exp_annotations"]["description"] for t in tests for c in t["alert_rule_test"]
            if c["alertname"] == "RedisSentinelQuorumAtRisk" for a in c["exp_alerts"]]
    assert sorted(d.split(" sentinels report")[0] for d in said) == ["Master mymaster: 0 of 3",
                                                                     "Master mymaster: 1 of 3"]
    assert all("1 healthy sentinel" not in d for d in said)


def test_a_redis_selector_that_picks_the_services_own_targets_is_a_located_error(spec_from):
    """RedisExporterDown reads `up` of the Redis selector, ServiceDown and InstanceDown `up` of the service's:
    selectors that contain one another would make one failed scrape fire both."""
    from obsgen.errors import SpecError

    with pytest.raises(SpecError) as caught:
        spec_from("""
apiVersion: obsgen/v1
service: {name: shop, team: web, selector: {namespace: shop}}
redis:
  - {name: cache, topology: standalone, selector: {namespace: shop, app: redis}}
""")
    (problem,) = caught.value.problems
    assert str(problem).startswith("test.yaml:5:51: redis[0].selector: selector {app: redis, namespace: shop} "
                                       "also picks the service's own scrape targets (service selector "
                                       "{namespace: shop})"), str(problem)


# Each mutation puts back a flaw the drill found; the generated promtool tests must catch it.
MUTATIONS = {
    "RedisDown for any server down pages for a lost replica or sentinel": (
        r"(alert: RedisDown\n    expr: \|-\n)(?:      .*\n)+", '\\1      redis_up{job="redis"} == 0\n'),
    "servers and sentinels not told apart: a dead sentinel reads as a lost server": (
        r"\n *unless on \(instance\)\n *last_over_time\(redis_instance_info\{[^}]*redis_mode=\"sentinel\"\}\[1d\]\)", ""),
    "no healthy replica judged by Sentinel's ok_slaves alone misses a refused link": (
        r"(alert: RedisNoHealthyReplica\n    expr: \|-\n)(?:      .*\n)+",
        '\\1      max by (master_name) (redis_sentinel_master_ok_slaves{job="redis", master_name="mymaster"}) < 1\n'),
    "failover that compares with the wrong past names no old master": (r" offset 5m\)", " offset 1m)"),
    "exporter alert that only sees failed scrapes misses targets gone from discovery": (
        r"(alert: RedisExporterDown\n    expr: \|-\n      up\{job=\"redis\"\} == 0\n)(?:      .*\n)+", "\\1"),
    "exporter alert on every scrape target fires for the service's own crash (InstanceDown's news)": (
        r"(alert: RedisExporterDown\n    expr: \|-\n      )up\{job=\"redis\"\} == 0", "\\1up == 0"),
}


@pytest.mark.promtool
@pytest.mark.parametrize("mutation", MUTATIONS)
def test_generated_tests_catch_a_broken_redis_rule(tmp_path, maple, mutation):
    pattern, replacement = MUTATIONS[mutation]
    assert_mutation_caught(tmp_path, maple, pattern, replacement, mutation)


# -- runbook queries on a known world ----------------------------------------------------------------

M, R, S1, S2 = "redis://10.0.0.1:6379", "redis://10.0.0.2:6379", "redis://10.0.0.3:26379", "redis://10.0.0.4:26379"
NOW = "10m"


def world() -> dict[str, str]:
    """Ten minutes, one sample a minute: master M serves without a replica (its replica R died at 2m); sentinel
    S1 up, counting 1 healthy sentinel, 0 promotable replicas; sentinel S2 answered as a sentinel until it died at
    5m. The multi-target exporter reaches every target. Another Redis (job redis-other) stays out of every
    answer."""
    out: dict[str, str] = {}
    for job in ("redis", "redis-other"):
        at = lambda instance, **labels: "{" + ", ".join(  # noqa: E731
            f'{k}="{v}"' for k, v in {"job": job, "instance": instance, **labels}.items()) + "}"
        out |= {
            f"up{at(M)}": "1x10", f"up{at(R)}": "1x10", f"up{at(S1)}": "1x10", f"up{at(S2)}": "1x10",
            f"redis_up{at(M)}": "1x10", f"redis_up{at(R)}": "1x2 0x8", f"redis_up{at(S1)}": "1x10",
            f"redis_up{at(S2)}": "1x5 0x5",
            f"redis_instance_info{at(M, role='master', redis_mode='standalone')}": "1x10",
            f"redis_instance_info{at(R, role='slave', redis_mode='standalone')}": "1x2 stale",
            f"redis_instance_info{at(S1, role='', redis_mode='sentinel')}": "1x10",
            f"redis_instance_info{at(S2, role='', redis_mode='sentinel')}": "1x5 stale",
            f"redis_connected_slaves{at(M)}": "1x2 0x8",
            f"redis_connected_slaves{at(R)}": "0x2 stale",
            f"redis_master_link_up{at(R, master_host='10.0.0.1', master_port='6379')}": "1x2 stale",
            f"redis_sentinel_master_ok_sentinels{at(S1, master_name='mymaster', master_address='10.0.0.1:6379')}":
                "2x5 1x5",
            f"redis_sentinel_master_ok_slaves{at(S1, master_name='mymaster', master_address='10.0.0.1:6379')}":
                "1x2 0x8",
        }
    return out


def _at(instance: str, **labels: str) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in {"instance": instance, "job": "redis", **labels}.items()) + "}"


# alert: {query name: the truth of the world at NOW}
TRUTHS = {
    "RedisDown": {
        "up": {_at(M): 1, _at(R): 0},  # data servers only (trial 3: a stopped sentinel read as a lost master)
        "roles": {'{instance="%s", redis_mode="standalone", role="master"}' % M: 1,
                  '{instance="%s", redis_mode="sentinel"}' % S1: 1},
        "links": {},  # the only replica is down: no link series left
    },
    "RedisExporterDown": {"scrapes": {_at(M): 1, _at(R): 1, _at(S1): 1, _at(S2): 1}},
    "RedisSentinelDown": {
        "ok_sentinels": {'{master_address="10.0.0.1:6379", master_name="mymaster"}': 1},
        "sentinels_up": {_at(S1): 1, _at(S2): 0},
    },
    "RedisNoHealthyReplica": {
        "replicas": {_at(M): 0},
        "promotable": {'{master_address="10.0.0.1:6379", master_name="mymaster"}': 0},
    },
}


def test_each_diagnostic_query_returns_the_truth_of_a_known_world(maple, tmp_path):
    queries = {a.name: dict(a.queries) for a in alerts(maple) if a.name in TRUTHS}
    checks = [(render(queries[alert][name]), truth) for alert, truths in TRUTHS.items()
              for name, truth in truths.items()]
    evaluate(tmp_path, world(), checks, NOW)


# -- runbook pages -------------------------------------------------------------------------------

@pytest.mark.parametrize("alert", REDIS_PAGES)
def test_every_page_has_its_sections_three_first_checks_and_parsed_queries_of_this_redis(maple_pages, alert):
    page = maple_pages[alert]
    assert 1 <= len(steps(section(page, "First checks"))) <= 3, alert
    queries = blocks(section(page, "Diagnosis"), "promql")
    assert queries, alert
    for q in queries:
        assert 'job="redis"' in q, (alert, q)
    assert all("Confirm:" in s for s in steps(section(page, "Mitigation"))), alert


def test_pages_list_each_metric_with_its_publisher(maple_pages):
    """Exporter metrics are published by redis_exporter and `up` by Prometheus itself: the app defines none."""
    metrics = reference_metrics(maple_pages["RedisExporterDown"])
    assert metrics == {"up": False}
    assert "- `up`: published by Prometheus itself" in maple_pages["RedisExporterDown"]
    assert reference_metrics(maple_pages["RedisDown"]) == {"redis_up": False, "redis_instance_info": False,
                                                           "up": False, "redis_master_link_up": False}


def test_docs_list_every_redis_signal_with_its_metric():
    rows = docs_rows("redis")
    assert set(rows) == set(redis.REDIS_EXPORTER), set(rows) ^ set(redis.REDIS_EXPORTER)
    for signal, ref in redis.REDIS_EXPORTER.items():
        assert rows[signal]["metric"].startswith(f"`{ref.name}`"), (signal, rows[signal])


@pytest.mark.parametrize("alert", REDIS_PAGES)
def test_redis_pages_hard_code_no_port_and_ask_every_sentinel_of_the_spec_first(maple_pages, alert):
    """After a failover the master is no longer where the spec's `port` says, and a stopped sentinel answers
    nothing: no command names a port, and every sentinel-deployment page starts by asking each sentinel."""
    lines = commands(maple_pages[alert])
    calls = [c for c in lines if "redis-cli" in c]
    assert calls, alert
    assert not [c for c in calls if re.search(r"-p [0-9]|:6379|:2637[0-9]", c)], alert
    assert not [c for c in calls if "-h " in c and "${MASTER_HOST:?" not in c], "-h takes no redis:// URL; use -u"
    if alert not in ("RedisExporterDown", "RedisRejectedConnections"):
        assert lines[0] == "SENTINELS='172.20.0.10:26379 172.20.0.10:26380 172.20.0.10:26381'", (alert, lines[0])
        first = next(c for c in calls if "PING 2>&1" not in c)
        assert "SENTINEL get-master-addr-by-name mymaster" in first, (alert, first)


def test_command_blocks_name_their_component_verbatim_for_the_drill_to_find_them():
    oms = load(ROOT / "specs" / "oms.yaml")
    page = rendered(oms)["oms/runbooks/RedisDown.md"]
    assert [name for name, _ in BLOCK.findall(page)] == ["smart_cache_redis"] * 2


def test_every_variable_a_redis_page_reads_is_a_label_of_its_alert_a_line_of_it_or_asked_for(maple_pages, maple):
    """Placeholders filled mechanically: `$X` is the alert's label `x`, or set by an earlier line of the page, or
    an operator's choice the page names in its text ("set `X`")."""
    labels: dict[str, set[str]] = {}
    for a in alerts(maple):
        for s in a.scenarios:
            if any(c.fires for c in s.checks):
                labels.setdefault(a.name, set()).update(s.labels, {"instance"} if s.per_instance and not s.alone
                                                        else set())
    for alert in REDIS_PAGES:
        page = maple_pages[alert]
        lines = commands(page)
        assigned = {m for line in lines for m in re.findall(r"(?:^|; )([A-Z][A-Z_]*)=", line)}
        used = {m for line in lines for m in re.findall(r"\$\{?([A-Z][A-Z_]*)", line)}
        from_labels = {name.upper() for name in labels.get(alert, set())}
        asked = set(re.findall(r"[Ss]et `([A-Z_]+)`", page)) | set(re.findall(r"`([A-Z_]+)` to the", page))
        unfilled = used - assigned - from_labels - asked - {"REDISCLI_AUTH"}
        assert not unfilled, (alert, unfilled)


def test_the_master_loss_page_says_first_that_a_manual_failover_ends_a_quorum_loss_and_decides_first(maple_pages):
    page = maple_pages["RedisDown"]
    assert section(page, "What it means").lstrip().startswith(
        "> **Sentinel cannot fail over (quorum lost) and the master is down?** A manual failover")
    decisions = steps(section(page, "First checks"))
    assert [d.split("**")[1] for d in decisions] == ["Failed over already?", "Can Sentinel fail over?",
                                                     "Is there a replica to promote?"]
    diagnosis = section(page, "Diagnosis")
    assert diagnosis.index("**Decide first**") < diagnosis.index("```bash")
    mitigation = steps(section(page, "Mitigation"))
    assert "SENTINEL failover mymaster" in mitigation[0] and "(destructive" in mitigation[0]
    # bringing the old master back is destructive unless a failover happened, and the page says how to start it
    # as a replica of the current master
    assert "**(destructive)** Without a\n   failover" in mitigation[2]
    assert 'echo "replicaof ${MASTER%:*} ${MASTER##*:}"' in mitigation[2]
    # trial 3: with no replica to promote the page must not loop between "wait" and "fail over by hand"
    assert "NOGOODSLAVE" in mitigation[0] and "**The exception: every replica is down too**" in mitigation[2]
    assert mitigation[3].startswith("4. **No sentinel answers, or the sentinels refuse a healthy replica**")
    assert "REPLICAOF NO ONE" in mitigation[3] and "CONFIG REWRITE" in mitigation[3]
    # trial 4: NOGOODSLAVE with a replica that answers is Sentinel refusing old data, not "no replica": the page
    # must send that case to the manual promotion, never to restarting the master over the replica's newer copy
    assert "promote it by hand (step 4)" in mitigation[0]
    assert "never step 3" in diagnosis and "master_link_down_since_seconds" in diagnosis


def test_every_redis_page_command_line_is_complete_bash(maple_pages):
    """A line bash cannot parse (an apostrophe in a `${VAR:?message}`) waits for more input in the on-call's
    shell and hangs the drill: each line is checked by `bash -n`, one process for all of them."""
    lines = sorted({line for alert in REDIS_PAGES for line in commands(maple_pages[alert])})
    script = "".join(f"bash -n -c {shlex.quote(line)} || echo {shlex.quote('BROKEN ' + line)}\n" for line in lines)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert "BROKEN" not in done.stdout, done.stdout + done.stderr


def test_redis_pages_never_reach_a_server_through_an_empty_variable(maple_pages):
    """Trial 3: with no sentinel answering, `SENTINEL` and `MASTER` were empty and `redis-cli -u "redis://"` went
    to 127.0.0.1:6379, on the master's host the master's own port. Every address variable a page sets itself or
    takes from an optional label is guarded with ${VAR:?why} where it addresses a server."""
    for alert in REDIS_PAGES:
        for line in commands(maple_pages[alert]):
            for name in ("SENTINEL", "MASTER", "MASTER_ADDRESS", "OLD_MASTER_ADDRESS"):
                assert f'redis://${name}"' not in line, (alert, line)
            for name in ("INSTANCE", "REPLICA", "MASTER_HOST", "MASTER_PORT"):  # from a label, or asked for
                assert f'"${name}"' not in line, (alert, line)


def test_a_standalone_master_loss_page_has_no_sentinel_and_keeps_the_replicas_copy_first(spec_from):
    spec = spec_from("""
apiVersion: obsgen/v1
service: {name: s, team: t}
redis: [{name: sessions, topology: standalone, replicas: 1, selector: {job: redis-sessions}}]
""")
    page = rendered(spec)["s/runbooks/RedisDown.md"]
    assert not re.search(r"quorum|[Ff]ailed over|SENTINEL", section(page, "First checks")) and "SENTINEL" not in page
    first = steps(section(page, "Mitigation"))[0]
    assert first.startswith("1. **(destructive unless the replica's copy is kept)**")
    assert first.index('REPLICAOF NO ONE') < first.index('--rdb "$DUMP"') < first.index('REPLICAOF "${M%:*}"')
    assert 'redis_master_link_up{job="redis-sessions"}' in section(page, "Diagnosis")  # where REPLICA comes from


def test_no_redis_page_offers_a_failover_that_cannot_succeed_or_a_check_that_cannot_fail(maple_pages):
    """The drill's wrong checks: SENTINEL failover with no healthy replica answers NOGOODSLAVE; num-other-sentinels
    stays 2 with two of three sentinels dead; an old master listed without s_down may be an empty master."""
    assert "SENTINEL failover" not in maple_pages["RedisNoHealthyReplica"]
    for alert in REDIS_PAGES:
        page = maple_pages[alert]
        assert "num-other-sentinels" not in page
        assert "FLUSHDB" not in page.replace("Never `FLUSHDB`", "")
    failover = maple_pages["RedisSentinelFailover"]
    assert "role-reported=slave" in failover and "master-link-status=ok" in failover
    assert "SENTINEL ckquorum mymaster" in maple_pages["RedisSentinelQuorumAtRisk"]


def test_memory_commands_delete_on_the_master_and_the_ratio_has_no_infinity(maple_pages):
    page = maple_pages["RedisMemoryHigh"]
    assert 'redis-cli -u "redis://${MASTER:?no master named}" UNLINK "$KEY"' in page
    assert 'redis-cli -u "redis://${MASTER:?no master named}" CONFIG SET maxmemory "$MAXMEMORY"' in page
    assert 'redis_memory_used_bytes{job="redis"} / (redis_memory_max_bytes{job="redis"} > 0)' in page
    assert not re.search(r"redis_memory_used_bytes\{[^}]*\} / redis_memory_max_bytes", page)
