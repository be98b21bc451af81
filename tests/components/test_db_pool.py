"""Connection pool runbooks: each diagnostic query returns the truth of a known world for HikariCP, the SQLAlchemy
pages say only what that profile can measure, and each page queries the database its pools name."""

from __future__ import annotations

import re

import pytest

from obsgen.components import db_pool
from obsgen.spec import parse

from .runbook_pages import (blocks, check_cluster_kept, check_docs, check_page, evaluate, pages, prose,
                            reference_metrics, section, steps)

HIKARI = """\
apiVersion: obsgen/v1
service: {name: ledger, team: payments}
db_pools:
  - {name: main, description: Ledger database, pool_size: 10, database: postgresql}
  - {name: reports, pool_size: 4, database: mysql}
"""
SQLALCHEMY = """\
apiVersion: obsgen/v1
service: {name: orders, team: shop, profile: python}
db_pools:
  - {name: main, pool_size: 5, max_overflow: 10, timeout: 30s, database: postgresql}
"""
I1, I2 = "i1:8080", "i2:8080"
FIRES = {"DbPoolExhausted": {"main", "reports"}, "DbPoolAcquireTimeouts": {"main", "reports"},
         "DbPoolPendingHigh": {"main", "reports"}}
DIAGNOSIS = {
    "DbPoolExhausted": ("in_use", "idle", "pending", "timeouts", "acquire_time"),
    "DbPoolAcquireTimeouts": ("timeouts", "in_use", "idle", "pending", "acquire_time"),
    "DbPoolPendingHigh": ("pending", "in_use", "idle", "acquire_time", "timeouts"),
}


def _at(pool: str, instance: str) -> str:
    return f'{{instance="{instance}", pool="{pool}"}}'


# (pool, instance): connections checked out, idle, threads waiting; per minute: timeouts, seconds spent acquiring,
# acquisitions. main on i1 is exhausted with 5 waiting; on i2 it has room; reports on i1 is exhausted too.
STATE = {("main", I1): (10, 0, 5, 30, 15, 60), ("main", I2): (3, 7, 0, 0, 3, 60), ("reports", I1): (4, 0, 2, 6, 30, 60)}
TRUTH = {
    "in_use": {_at(p, i): s[0] for (p, i), s in STATE.items()},
    "idle": {_at(p, i): s[1] for (p, i), s in STATE.items()},
    "pending": {_at(p, i): s[2] for (p, i), s in STATE.items()},
    "timeouts": {_at("main", I1): 0.5, _at("main", I2): 0.0, _at("reports", I1): 0.1},
    "acquire_time": {_at("main", I1): 0.25, _at("main", I2): 0.05, _at("reports", I1): 0.5},
}


def hikari_world() -> dict[str, str]:
    out = {}
    for (pool, instance), (active, idle, pending, timeouts, acquire_s, acquires) in STATE.items():
        labels = f'job="ledger", pool="{pool}", instance="{instance}"'
        out |= {f"hikaricp_connections_active{{{labels}}}": f"{active}+0x10",
                f"hikaricp_connections_idle{{{labels}}}": f"{idle}+0x10",
                f"hikaricp_connections_pending{{{labels}}}": f"{pending}+0x10",
                f"hikaricp_connections_timeout_total{{{labels}}}": f"0+{timeouts}x10",
                f"hikaricp_connections_acquire_seconds_sum{{{labels}}}": f"0+{acquire_s}x10",
                f"hikaricp_connections_acquire_seconds_count{{{labels}}}": f"0+{acquires}x10"}
    # another service's pool of the same name, and a pool of this service the spec does not describe
    out['hikaricp_connections_active{job="billing", pool="main", instance="b:1"}'] = "99+0x10"
    out['hikaricp_connections_pending{job="ledger", pool="HikariPool-9", instance="i1:8080"}'] = "99+0x10"
    return out


@pytest.fixture(scope="module")
def hikari():
    return pages(parse(HIKARI, "hikari.yaml"), db_pool.KIND)


@pytest.fixture(scope="module")
def sqlalchemy():
    return pages(parse(SQLALCHEMY, "sqlalchemy.yaml"), db_pool.KIND)


def test_every_page_is_complete_short_at_the_top_and_selects_its_pools(hikari, sqlalchemy):
    assert set(hikari) == set(FIRES)
    for alert, page in hikari.items():
        check_page(alert, page, job="ledger", identity="pool", names=FIRES[alert], raw_labels=set())
    assert set(sqlalchemy) == {"DbPoolExhausted", "DbPoolAcquireTimeouts"}  # SQLAlchemy counts no waiters
    for alert, page in sqlalchemy.items():
        check_page(alert, page, job="orders", identity="pool", names={"main"}, raw_labels=set())


def test_each_diagnostic_query_returns_the_truth_of_a_known_world(hikari, tmp_path):
    checks = []
    for alert, names in DIAGNOSIS.items():
        queries = blocks(section(hikari[alert], "Diagnosis"), "promql")
        assert len(queries) == len(names), (alert, queries)
        checks += [(query, TRUTH[name]) for name, query in zip(names, queries)]
    evaluate(tmp_path, hikari_world(), checks, at="10m")


def test_python_pool_pages_query_only_what_sqlalchemy_measures_and_explain_an_empty_answer(sqlalchemy, tmp_path):
    page = sqlalchemy["DbPoolExhausted"]
    in_use, idle, timeouts = blocks(section(page, "Diagnosis"), "promql")
    assert "waiting" not in prose(section(page, "What it means"))
    assert "counts no waiting callers, so being at the maximum for the `for` is the condition" in " ".join(page.split())
    # a pool that never timed out: prometheus_client has no series for the counter, and the page says so
    assert "No result means no checkout has timed out since the processes started" in " ".join(page.split())
    labels = 'job="orders", pool="main", instance="i1:8000"'
    world = {f"db_pool_checked_out_connections{{{labels}}}": "15+0x10",
             f"db_pool_checked_in_connections{{{labels}}}": "0+0x10"}
    at = '{instance="i1:8000", pool="main"}'
    evaluate(tmp_path, world, [(in_use, {at: 15}), (idle, {at: 0}), (timeouts, {})], at="10m")


def test_each_page_queries_the_databases_its_pools_name(hikari, sqlalchemy):
    page = hikari["DbPoolExhausted"]
    sql = "\n".join(blocks(section(page, "Diagnosis"), "sql"))
    assert "FROM pg_stat_activity" in sql and "SHOW FULL PROCESSLIST" in sql
    assert "PostgreSQL (pool `main`)" in page and "MySQL (pool `reports`)" in page
    python = "\n".join(blocks(section(sqlalchemy["DbPoolExhausted"], "Diagnosis"), "sql"))
    assert "FROM pg_stat_activity" in python and "PROCESSLIST" not in python
    assert "pool `main`: 5 connections + 10 overflow = 15 at most" in sqlalchemy["DbPoolExhausted"]


def test_reference_says_which_metrics_hikari_publishes_and_which_the_app_must(hikari, sqlalchemy):
    assert reference_metrics(hikari["DbPoolExhausted"]) == {
        m: False for m in ("hikaricp_connections_active", "hikaricp_connections_pending",
                           "hikaricp_connections_idle", "hikaricp_connections_timeout_total",
                           "hikaricp_connections_acquire_seconds_sum", "hikaricp_connections_acquire_seconds_count")}
    assert re.search(r"`hikaricp_connections_active`: published by HikariCP's Micrometer metrics tracker",
                     hikari["DbPoolExhausted"])
    assert reference_metrics(sqlalchemy["DbPoolExhausted"]) == {
        "db_pool_checked_out_connections": True, "db_pool_checked_in_connections": True,
        "db_pool_checkout_timeouts_total": True}


def test_docs_list_every_pool_signal_with_its_metrics_and_origin():
    check_docs(db_pool.KIND)


def test_queries_keep_the_cluster_where_the_rules_do():
    check_cluster_kept(HIKARI, db_pool.KIND)


def test_a_page_tells_the_history_of_its_own_pools_only():
    text = HIKARI.replace("database: postgresql}", "database: postgresql, history: ['2024-05: a report held every "
                          "connection for 40 minutes; *checkouts* timed out.']}")
    one = pages(parse(text, "history.yaml"), db_pool.KIND)
    meaning = section(one["DbPoolExhausted"], "What it means")
    assert ("Past incidents of db pool `main` (from the spec's `history`):\n\n- 2024-05: a report held every "
            "connection for 40 minutes; \\*checkouts\\* timed out.") in meaning
    assert "Past incidents of `reports`" not in meaning
    assert all("Past incidents" not in page for page in pages(parse(HIKARI, "hikari.yaml"), db_pool.KIND).values())


def test_a_metric_naming_the_pool_by_another_label_is_still_read_as_the_pool(tmp_path):
    text = HIKARI.replace("{name: reports, pool_size: 4, database: mysql}",
                          "{name: reports, pool_size: 4, database: mysql, "
                          "metrics: {timeouts: {name: reports_db_timeouts_total, label: datasource, "
                          "value: reportsDs}}}")
    page = pages(parse(text, "relabelled.yaml"), db_pool.KIND)["DbPoolAcquireTimeouts"]
    first = steps(section(page, "Diagnosis"))[0]  # the queries differ in shape now: one block per pool
    assert "DB pool `main`:" in first and "DB pool `reports`:" in first
    main, reports = blocks(first, "promql")
    world = hikari_world() | {
        'reports_db_timeouts_total{job="ledger", datasource="reportsDs", instance="i1:8080"}': "0+12x10",
        'reports_db_timeouts_total{job="ledger", datasource="otherDs", instance="i1:8080"}': "0+600x10"}
    # a runbook query groups by the metric's own label, as a person types it (tests/components/test_identity.py)
    truth = [(main, {_at("main", I1): 0.5, _at("main", I2): 0.0}),
             (reports, {f'{{datasource="reportsDs", instance="{I1}"}}': 0.2})]
    evaluate(tmp_path, world, truth, at="10m")
