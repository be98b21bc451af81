"""Lock runbooks: each diagnostic query returns the truth of a known world, the Redis commands work on a real
Redis holding lock keys, and a lock without `hold_time_max` reads no hold-time metric anywhere (Maple's)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, build_into, promtool, rendered, tool
from e2e.harness import redis_call, redis_server, wait_until
from obsgen.components import lock
from obsgen.spec import parse

from .runbook_pages import (blocks, check_cluster_kept, check_docs, check_page, evaluate, pages, prose,
                            reference_metrics, section, steps)

SPEC = """\
apiVersion: obsgen/v1
service: {name: jobs, team: platform, profile: python}
locks:
  - name: leader
    description: Leader election (redis-py Lock)
    backend: redis
    key_pattern: "lock:leader:*"
    wait_time: 1s
    lease_time: 30s
    quantile: 0.75
    acquire_latency_max: 250ms
    hold_time_max: 2s
  - name: ledger
    backend: database
    quantile: 0.75
    acquire_latency_max: 250ms
"""
I1, I2 = "i1:8000", "i2:8000"
NOW = 7 * 24 * 60 + 10  # minutes: a week of history before the moment the queries are run
LATE = 10_000  # i2 starts here: a week ago only i1 took the lock


@pytest.fixture(scope="module")
def spec():
    return parse(SPEC, "locks.yaml")


@pytest.fixture(scope="module")
def lock_pages(spec):
    return pages(spec, lock.KIND)


def _series(metric: str, lock_name: str, instance: str, per_minute: float, **labels: str) -> tuple[str, str]:
    extra = "".join(f', {k}="{v}"' for k, v in labels.items())
    selector = f'{metric}{{job="jobs", lock="{lock_name}", instance="{instance}"{extra}}}'
    if instance == I2 and lock_name == "leader":
        return selector, f"_x{LATE} 0+{per_minute}x{NOW - LATE}"
    return selector, f"0+{per_minute}x{NOW}"


def _histogram(metric: str, lock_name: str, instance: str, cumulative: dict[str, float]) -> dict[str, str]:
    return dict(_series(f"{metric}_bucket", lock_name, instance, n, le=le) for le, n in cumulative.items())


def world() -> dict[str, str]:
    """Per minute: leader on i1 acquires 60 times (quarter under 125ms, half under 250ms, all under 500ms),
    6 fail; on i2 (for the last 90 minutes only) 60 times, half over 500ms, 30 fail. Holds: i1 half under 1s,
    all under 4s; i2 all over 4s. The database lock ledger on i1: 60 fast acquisitions, none failing.
    Another service's lock of the same name and another lock of this service must stay out of every answer."""
    out: dict[str, str] = {}
    for instance, acquire, failed, held in (
            (I1, {"0.125": 15, "0.25": 30, "0.5": 60, "+Inf": 60}, 6, {"0.5": 15, "1": 30, "4": 60, "+Inf": 60}),
            (I2, {"0.125": 0, "0.25": 0, "0.5": 30, "+Inf": 60}, 30, {"0.5": 0, "1": 0, "4": 0, "+Inf": 60})):
        out |= _histogram("lock_acquire_seconds", "leader", instance, acquire)
        out |= _histogram("lock_held_seconds", "leader", instance, held)
        out.update([_series("lock_acquire_seconds_count", "leader", instance, 60),
                    _series("lock_acquire_failures_total", "leader", instance, failed)])
    out |= _histogram("lock_acquire_seconds", "ledger", I1, {"0.125": 60, "0.25": 60, "0.5": 60, "+Inf": 60})
    out.update([_series("lock_acquire_seconds_count", "ledger", I1, 60),
                _series("lock_acquire_failures_total", "ledger", I1, 0)])
    out['lock_acquire_seconds_count{job="other", lock="leader", instance="x:1"}'] = f"0+6000x{NOW}"
    out |= _histogram("lock_acquire_seconds", "elsewhere", I1, {"0.125": 0, "0.25": 0, "0.5": 0, "+Inf": 600})
    out.update([_series("lock_acquire_seconds_count", "elsewhere", I1, 600)])
    return out


def _at(lock_name: str, instance: str | None = None) -> str:
    return "{" + (f'instance="{instance}", ' if instance else "") + f'lock="{lock_name}"' + "}"


# What each query of the pages must return in that world (by the query's place on the page).
TRUTH = {
    "latency": {_at("leader", I1): 0.375, _at("leader", I2): 0.5, _at("ledger", I1): 0.09375},
    "hold": {_at("leader", I1): 2.5, _at("leader", I2): 4.0},
    "attempts": {_at("leader"): 2.0, _at("ledger"): 1.0},
    "attempts_last_week": {_at("leader"): 1.0, _at("ledger"): 1.0},
    "failed_share": {_at("leader", I1): 0.1, _at("leader", I2): 0.5, _at("ledger", I1): 0.0},
}
DIAGNOSIS = {
    "LockAcquireLatencyHigh": ("latency", "hold", "attempts", "attempts_last_week", "failed_share"),
    "LockAcquireFailuresHigh": ("failed_share", "latency", "hold", "attempts", "attempts_last_week"),
    "LockHoldTimeHigh": ("hold", "latency", "attempts", "attempts_last_week"),
}
FIRES = {"LockAcquireLatencyHigh": {"leader", "ledger"}, "LockAcquireFailuresHigh": {"leader", "ledger"},
         "LockHoldTimeHigh": {"leader"}}


def test_every_page_is_complete_short_at_the_top_and_selects_its_locks(lock_pages):
    assert set(lock_pages) == set(FIRES)
    for alert, page in lock_pages.items():
        check_page(alert, page, job="jobs", identity="lock", names=FIRES[alert], raw_labels=set())
        assert prose(section(page, "What it means")).count("- lock `") == len(FIRES[alert]), alert


def test_each_diagnostic_query_returns_the_truth_of_a_known_world(lock_pages, tmp_path):
    checks = []
    for alert, names in DIAGNOSIS.items():
        queries = blocks(section(lock_pages[alert], "Diagnosis"), "promql")
        assert len(queries) == len(names), (alert, queries)
        for name, query in zip(names, queries):
            expected = {k: v for k, v in TRUTH[name].items() if re.search(r'lock="(\w+)"', k)[1] in FIRES[alert]}
            checks.append((query, expected))
    evaluate(tmp_path, world(), checks, at=f"{NOW}m")


def test_only_the_lock_with_a_hold_limit_reads_the_hold_time(spec, lock_pages):
    for alert, page in lock_pages.items():
        diagnosis = section(page, "Diagnosis")
        assert "lock_held_seconds_bucket" in diagnosis  # leader's
        assert 'lock_held_seconds_bucket{job="jobs", lock="leader"}' in diagnosis, alert
        assert "ledger" not in "".join(q for q in blocks(diagnosis, "promql") if "lock_held" in q), alert
    assert "Lock `ledger` does not measure how long it is held: set `hold_time_max`" in " ".join(
        prose(section(lock_pages["LockAcquireLatencyHigh"], "Diagnosis")).split())
    alone = parse(SPEC.split("  - name: ledger")[0].replace("    hold_time_max: 2s\n", ""), "one.yaml")
    files = rendered(alone)
    assert not any("lock_held" in text for text in files.values())
    assert "LockHoldTimeHigh" not in pages(alone, lock.KIND)


def test_every_metric_is_app_defined_and_listed_with_its_origin(lock_pages):
    listed = reference_metrics(lock_pages["LockAcquireLatencyHigh"])
    assert listed == {"lock_acquire_seconds_bucket": True, "lock_held_seconds_bucket": True,
                      "lock_acquire_seconds_count": True, "lock_acquire_failures_total": True}


def test_docs_list_every_lock_signal_with_its_metric_and_origin():
    check_docs(lock.KIND)


@pytest.fixture
def redis(tmp_path):
    server = redis_server("redis", tmp_path).start()
    try:
        wait_until(lambda: redis_call(server.port, "PING") == "PONG", 10, "redis-server answers", server)
        yield server.port
    finally:
        server.stop()


def test_redis_commands_list_this_locks_keys_with_their_lease_on_a_real_redis(lock_pages, redis, tmp_path):
    redis_call(redis, "SET", "lock:leader:main", "token", "PX", "30000")  # redis-py Lock
    redis_call(redis, "EVAL", "redis.call('hincrby', KEYS[1], ARGV[1], 1); "  # a Redisson RLock
               "return redis.call('pexpire', KEYS[1], ARGV[2])", "1", "lock:leader:rlock", "uuid:1", "30000")
    redis_call(redis, "SET", "lock:leader:stale", "token")  # no lease: a dead holder keeps it forever
    redis_call(redis, "SET", "cache:other", "not a lock")
    page = lock_pages["LockAcquireLatencyHigh"]
    (commands,) = blocks(section(page, "Diagnosis"), "bash")
    master = f"127.0.0.1:{redis}"
    tool("redis-cli")
    out = subprocess.run(["bash", "-c", commands.replace("<master>", master)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=30)
    assert out.returncode == 0, out.stderr
    leases = dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.startswith("lock:"))
    assert set(leases) == {"lock:leader:main", "lock:leader:rlock", "lock:leader:stale"}
    assert leases["lock:leader:stale"] == "-1"
    assert all(0 < int(leases[k]) <= 30000 for k in ("lock:leader:main", "lock:leader:rlock"))
    assert "cmdstat_eval:" in out.stdout and "cache:other" not in out.stdout
    # the destructive step releases exactly the key it names
    release = next(s for s in steps(section(page, "Mitigation")) if "**(destructive)**" in s)
    (delete,) = re.findall(r"`(redis-cli -u redis://<master> DEL <key>)`", release)
    run = subprocess.run(["bash", "-c", delete.replace("<master>", master).replace("<key>", "lock:leader:stale")],
                         capture_output=True, text=True, timeout=30)
    assert run.stdout.strip() == "1"
    assert redis_call(redis, "EXISTS", "lock:leader:stale") == 0
    assert redis_call(redis, "EXISTS", "lock:leader:main") == 1


def _maple_locks():
    """specs/maple.yaml with its service and locks only (the other kinds' templates are converted elsewhere)."""
    doc = yaml.safe_load((ROOT / "specs" / "maple.yaml").read_text())
    return parse(yaml.safe_dump({k: doc[k] for k in ("apiVersion", "service", "locks")}), "maple.yaml")


def test_maple_lock_reads_exactly_the_metrics_its_spec_comment_names():
    text = (ROOT / "specs" / "maple.yaml").read_text()
    comment = text.split("\nlocks:\n")[0].rsplit("\n\n", 1)[1]
    named = set(re.findall(r"\block_\w+", comment))
    files = rendered(_maple_locks())
    read = {m for path, body in files.items() if "/runbooks/README" not in path
            for m in re.findall(r"\block_(?:acquire|held)\w*", body)}
    assert named == read == {"lock_acquire_seconds_bucket", "lock_acquire_seconds_count",
                             "lock_acquire_failures_total"}


def test_maple_lock_page_gives_its_keys_and_rollback_decision():
    page = pages(_maple_locks(), lock.KIND)["LockAcquireLatencyHigh"]
    scan = "for pattern in 'cache:sf:*'; do redis-cli -u redis://<master> --scan --pattern \"$pattern\" | head -20"
    assert scan in page
    assert "redis-cli -u redis://<master> SLOWLOG GET 10" in page and "-p 6379" not in page
    assert "roll back to the MySQL named lock (ADR-310)" in page
    assert "p95 acquire limit 100ms (objective 10ms)" in page
    assert "lock_held" not in page and "hold_time_max" in page


def test_queries_keep_the_cluster_where_the_rules_do():
    check_cluster_kept(SPEC, lock.KIND)


def test_a_lock_judged_at_its_highest_quantile_is_proven_by_its_generated_tests(tmp_path):
    """p99.99 (the schema's highest) at a busy lock's rate: the rule carries the quantile as written and the
    generated stories put enough acquisitions above the limit to fire it. (0.9999999999999998, which the schema
    took before, was written into the rule as 1 and no story could fire it.)"""
    text = SPEC.replace("quantile: 0.75", "quantile: 0.9999").replace("lease_time: 30s\n",
                                                                     "lease_time: 30s\n    min_attempt_rate: 653940\n")
    spec = parse(text, "locks.yaml")
    build_into(tmp_path, spec)
    rules = (tmp_path / "jobs" / "prometheus" / "rules.yaml").read_text()
    assert rules.count("histogram_quantile(0.9999, ") == 3, rules
    prom = tmp_path / "jobs" / "prometheus"
    result = promtool("test", "rules", *sorted(p.name for p in prom.glob("*.test.yaml")), cwd=prom)
    assert result.returncode == 0, result.stdout + result.stderr
