"""Stream (SSE) runbooks: complete pages with at most three first checks, and queries that promtool evaluates to
the truth of a known world: the fullest stores, new connections, how long connections last, the failed share."""

from __future__ import annotations

from pathlib import Path

import pytest

from obsgen.components import streams as stream_kind
from obsgen.pipeline import build
from obsgen.spec import load, parse

from .runbook_pages import FOREIGN, blocks, check_page, evaluate, only_kinds, pages, section

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests/specs/valid/streams.yaml"  # `orders` limited to 100 per store_id, `kitchen` without a limit
JOB = 'job="sse-python"'
WORLD = {  # instance a serves stores 1 and 2 of `orders` and the kitchen; b serves store 1
    f'sse_connections_active{{{JOB}, stream="orders", store_id="1", instance="a:1"}}': "95x160",
    f'sse_connections_active{{{JOB}, stream="orders", store_id="2", instance="a:1"}}': "10x160",
    f'sse_connections_active{{{JOB}, stream="orders", store_id="1", instance="b:1"}}': "50x160",
    f'sse_connections_active{{{JOB}, stream="kitchen", instance="a:1"}}': "30x160",
    f'sse_connections_opened_total{{{JOB}, stream="orders", store_id="1", instance="a:1"}}': "0+3x160",
    f'sse_connections_opened_total{{{JOB}, stream="orders", store_id="2", instance="a:1"}}': "0+3x160",
    f'sse_connections_opened_total{{{JOB}, stream="orders", store_id="1", instance="b:1"}}': "0+3x160",
    f'sse_connections_opened_total{{{JOB}, stream="kitchen", instance="a:1"}}': "0+30x160",
    f'sse_messages_sent_total{{{JOB}, stream="orders", instance="a:1"}}': "0+150x160",
    f'sse_send_failures_total{{{JOB}, stream="orders", instance="a:1"}}': "0+3x160",
    f'sse_messages_sent_total{{{JOB}, stream="kitchen", instance="a:1"}}': "0+30x160",
    f'sse_send_failures_total{{{JOB}, stream="kitchen", instance="a:1"}}': "0x160",
    f'sse_connections_active{{job="other", stream="orders", store_id="1", instance="z:1"}}': "99x160",
}
SEEDS = FOREIGN + ("AniVault", "Table Order")  # seed 004 tells its own story
A_ORDERS, B_ORDERS, A_KITCHEN = ('{instance="a:1", stream="orders"}', '{instance="b:1", stream="orders"}',
                                 '{instance="a:1", stream="kitchen"}')


@pytest.fixture(scope="module")
def streams():
    return pages(load(SPEC), stream_kind.KIND)


def test_every_page_is_complete_short_on_top_and_tells_no_other_system_s_story(streams):
    assert set(streams) == {"StreamConnectionsNearLimit", "StreamSendFailuresHigh", "StreamReconnectStorm"}
    for alert, page in streams.items():
        check_page(alert, page, job="sse-python", identity="stream", names={"orders", "kitchen"},
                   raw_labels={"store_id"}, foreign=SEEDS)


def test_near_limit_page_shows_the_fullest_stores_and_new_connections(streams, tmp_path):
    fullest, opens = blocks(section(streams["StreamConnectionsNearLimit"], "Diagnosis"), "promql")
    evaluate(tmp_path, WORLD, [  # kitchen has no limit: it is not among the fullest
        (fullest, {'{instance="a:1", stream="orders", store_id="1"}': 95,
                   '{instance="a:1", stream="orders", store_id="2"}': 10,
                   '{instance="b:1", stream="orders", store_id="1"}': 50}),
        (opens, {A_ORDERS: 0.4, B_ORDERS: 0.2}),  # 3 per 15 s per store
    ], at="10m", interval="15s")


def test_storm_page_gives_how_long_connections_last_from_the_open_and_new_ones(streams, tmp_path):
    lifetime, opens = blocks(section(streams["StreamReconnectStorm"], "Diagnosis"), "promql")
    evaluate(tmp_path, WORLD, [
        (lifetime, {A_ORDERS: 105 / 0.4, B_ORDERS: 50 / 0.2, A_KITCHEN: 30 / 2}),  # seconds a connection lasts
        (opens, {A_ORDERS: 0.4, B_ORDERS: 0.2, A_KITCHEN: 2}),
    ], at="10m", interval="15s")
    first = section(streams["StreamReconnectStorm"], "First checks")
    assert "the heartbeat interval of 30s must be shorter" in first


def test_send_failures_page_shows_the_failed_share_and_the_volume_over_the_alert_s_window(streams, tmp_path):
    failed, sent = blocks(section(streams["StreamSendFailuresHigh"], "Diagnosis"), "promql")
    assert "[15m]" in failed and "[15m]" in sent  # the failure window of the rule
    evaluate(tmp_path, WORLD, [(failed, {A_ORDERS: 3 / 150, A_KITCHEN: 0}), (sent, {A_ORDERS: 10, A_KITCHEN: 2})],
             at="30m", interval="15s")


def test_table_order_s_stream_is_judged_per_store():
    """Seed 004: SSE_MAX_CONNECTIONS_PER_STORE 100, a heartbeat every 30 s."""
    table_order = pages(only_kinds(ROOT / "specs/table-order.yaml", "streams"), stream_kind.KIND)
    page = table_order["StreamConnectionsNearLimit"]
    (fullest, _) = blocks(section(page, "Diagnosis"), "promql")
    assert fullest.startswith("topk(10, max by (instance, stream, store_id)")
    assert "at most 100 connections per store\\_id on an instance, heartbeat every 30s" in page
    for alert, page in table_order.items():
        check_page(alert, page, job="table-order", identity="stream", names={"orders"}, raw_labels={"store_id"},
                   foreign=FOREIGN + ("AniVault",))


def test_a_quiet_stream_is_not_called_missing_before_its_first_connection():
    """`sse_connections_active{stream}` has no series until the first client connects (a labelled gauge):
    ComponentMetricsMissing on it would warn about every quiet stream of a healthy service."""
    spec = parse("apiVersion: obsgen/v1\nservice: {name: sse, team: web, profile: python}\n"
                 "streams: [{name: orders, max_connections: 100}]\n", "sse.yaml")
    assert "ComponentMetricsMissing" not in {a.name for c in build(spec).components for a in c.alerts}
