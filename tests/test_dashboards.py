"""Dashboards: valid against Grafana's own dashboard model, lint-clean, valid PromQL, and showing what matters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import promql_parser
import pytest

from obsgen.pipeline import build
from obsgen.model.panels import uid
from obsgen.render import dashboards
from conftest import SPECS, VALID_SPECS
from obsgen.spec import load, parse

ROOT = Path(__file__).resolve().parent.parent
SELECTOR = r'\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\}'  # label values may hold braces
SCHEMA = json.loads((ROOT / "tests/fixtures/grafana-dashboard.schema.json").read_text("utf-8"))

# Known false positives of the schema generated from @grafana/schema (see scripts/make-grafana-schema.sh).
# Each entry: (JSON path pattern of the error, schema keyword, why Grafana accepts it anyway).
ALLOWED = (
    # The schema types annotation queries as the generic AnnotationQuery without datasource-specific fields,
    # but the Prometheus datasource reads its annotation query from these keys (expr, step, titleFormat, …).
    (r"^annotations/list/\d+$", "additionalProperties",
     "Prometheus annotation fields (expr, step, titleFormat, textFormat, tagKeys, useValueForTime)"),
    # The CUE model declares panel links as DashboardLink, but panels actually store data links
    # ({title, url, targetBlank}); Grafana's panel editor writes exactly that shape.
    (r"^panels/\d+/links/\d+$", "required", "panel links are data links, not dashboard links"),
)

SPEC = """
apiVersion: obsgen/v1
service: {name: shop, team: web, selector: {job: shop, namespace: prod}}
caches: [{name: products}]
breakers: [{name: payments, failure_rate_threshold: 50}]
executors: [{name: mailer, core_threads: 2, max_threads: 4, queue_capacity: 100}]
redis:
  - {name: sessions, topology: sentinel, master_name: mymaster, sentinels: 3, quorum: 2, replicas: 1,
     selector: {job: redis}}
"""

COUNTER = re.compile(r"\b(?!resilience4j_bulkhead_(?:active|available)_thread_count\b)"  # gauges, despite the name
                     r"[a-zA-Z_:][a-zA-Z0-9_:]*(?:_total|_count)\b")
RATE_FN = re.compile(r"\b(?:rate|irate|increase)\(")


@pytest.fixture(scope="module")
def maple():
    return load(ROOT / "specs/maple.yaml")


@pytest.fixture(scope="module")
def maple_files(maple) -> dict[str, str]:
    return dashboards.render(build(maple))


@pytest.fixture(scope="module")
def maple_dashboards(maple_files) -> dict[str, dict]:
    return {path: json.loads(text) for path, text in maple_files.items()}


# The fleet's extra cluster variable and filters are tested in test_multicluster.py.
LINTED_SPECS = [p for p in SPECS + VALID_SPECS if p.stem != "fleet-multicluster"]


@pytest.fixture(scope="module", params=LINTED_SPECS, ids=lambda p: p.stem)
def every_spec(request):
    """Each spec of specs/ and tests/specs/valid/: the checks every dashboard must pass run on all of them."""
    return load(request.param)


@pytest.fixture(scope="module")
def every_dashboards(every_spec) -> dict[str, dict]:
    return {path: json.loads(text) for path, text in dashboards.render(build(every_spec)).items()}


@pytest.fixture(scope="module")
def small():
    spec = parse(SPEC, "x.yaml")
    return {json.loads(t)["uid"].removeprefix("shop-"): json.loads(t) for t in dashboards.render(build(spec)).values()}


def panels(d: dict) -> list[dict]:
    return [p for p in d["panels"] if p["type"] != "row"]


def custom_signal(d: dict, p: dict) -> bool:
    """Custom-signal panels show the team's own PromQL verbatim (what its alert judges): the query lint rules
    skip them, and test_valid_spec_dashboards_… checks them with that exemption."""
    return d["uid"].endswith("custom-signals") or any("custom-signals/" in link["url"] for link in p.get("links", []))


def targets(d: dict) -> list[tuple[dict, dict]]:
    """Every panel's queries, but those of custom signals."""
    return [(p, t) for p in panels(d) if not custom_signal(d, p) for t in p["targets"]]


def panel(d: dict, title_part: str) -> dict:
    found = [p for p in panels(d) if title_part in p["title"]]
    assert len(found) == 1, [p["title"] for p in panels(d)]
    return found[0]


def exprs(p: dict) -> list[str]:
    return [t["expr"] for t in p["targets"]]


def alerts_of(spec) -> set[str]:
    return {a.name for a in build(spec).alerts}


def steps(p: dict) -> list[tuple[str, float | None]]:
    return [(s["color"], s["value"]) for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]


# --------------------------------------------------------------------------- what gets written

def test_maple_gets_an_overview_and_one_dashboard_per_concern(maple_files):
    assert sorted(maple_files) == [f"maple-expectation/dashboards/{s}.json" for s in (
        "availability", "cache-performance", "circuit-breaker", "distributed-locks", "redis-operations",
        "service-overview", "slo", "thread-pool")]


def test_concerns_the_spec_lacks_get_no_dashboard():
    spec = parse("apiVersion: obsgen/v1\nservice: {name: tiny, team: t}\nexecutors: [{name: io, queue_capacity: 10}]\n",
                 "x.yaml")
    assert sorted(dashboards.render(build(spec))) == ["tiny/dashboards/availability.json",
                                                       "tiny/dashboards/service-overview.json",
                                                       "tiny/dashboards/thread-pool.json"]


def test_rendering_twice_gives_identical_bytes(maple, maple_files):
    again = dashboards.render(build(maple))
    assert again == maple_files
    assert all(text.endswith("}\n") for text in again.values())


# --------------------------------------------------------------------------- Grafana's dashboard model

def schema_errors(d: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    out = []
    for error in validator.iter_errors(d):
        leaves = [error]
        while any(e.context for e in leaves):  # anyOf (panel or row): report the branch errors
            leaves = [c for e in leaves for c in (e.context or [e])]
        for leaf in leaves:
            path = "/".join(str(p) for p in leaf.absolute_path)
            if not any(re.search(pat, path) and leaf.validator == kw for pat, kw, _ in ALLOWED):
                out.append(f"{path}: {leaf.validator}: {leaf.message}")
    return out


def test_every_dashboard_matches_grafanas_dashboard_schema(every_dashboards):
    for path, d in every_dashboards.items():
        # rows match RowPanel, the rest Panel; only errors of the branch that fits are meaningful
        panels_ok = {"panels": []}
        assert schema_errors({**d, **panels_ok}) == [], path
        for p in d["panels"]:
            branch = "RowPanel" if p["type"] == "row" else "Panel"
            sub = {"$ref": f"#/definitions/{branch}", "definitions": SCHEMA["definitions"]}
            errors = [e for e in jsonschema.Draft7Validator(sub).iter_errors(p)
                      if not any(re.search(pat, "panels/0/" + "/".join(map(str, e.absolute_path)))
                                 and e.validator == kw for pat, kw, _ in ALLOWED)]
            assert [f"{e.json_path}: {e.message}" for e in errors] == [], (path, p["title"])


def test_the_allow_list_only_hides_what_it_documents(maple_dashboards):
    d = maple_dashboards["maple-expectation/dashboards/service-overview.json"]
    broken = json.loads(json.dumps(d))
    broken["panels"] = []
    broken["schemaVersion"] = "41"  # a real error must still be reported
    broken["annotations"]["list"][1]["iconColor"] = 3
    assert len(schema_errors(broken)) == 2


# --------------------------------------------------------------------------- dashboard linter rules

def test_dashboards_are_modern_read_only_and_stable(every_dashboards):
    for path, d in every_dashboards.items():
        slug = Path(path).stem
        assert d["schemaVersion"] == 41
        assert d["editable"] is False
        assert d["uid"] == uid(path.split("/")[0], slug) and len(d["uid"]) <= 40
        ids = [p["id"] for p in d["panels"]]
        assert ids == list(range(1, len(ids) + 1))
        text = json.dumps(d)
        for legacy in ('"intervalFactor"', '"maxDataPoints"', '"span"', '"rows"', '"step": 10', '"style"'):
            assert legacy not in text, (path, legacy)
        assert [p for p in null_paths(d) if not re.search(r"/(thresholds|value)/steps/0/value$", p)] == [], path


def null_paths(value, path="") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in null_paths(v, f"{path}/{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in null_paths(v, f"{path}/{i}")]
    return []


def test_uids_are_derived_from_service_and_dashboard_and_fit_grafanas_limit():
    assert uid("shop", "thread-pool") == "shop-thread-pool"
    long = uid("a-really-long-service-name-for-testing", "cache-performance")
    assert len(long) <= 40 and long == uid("a-really-long-service-name-for-testing", "cache-performance")
    assert long != uid("a-really-long-service-name-for-testing", "circuit-breaker")


def test_only_modern_panel_types(every_dashboards):
    for d in every_dashboards.values():
        assert {p["type"] for p in d["panels"]} <= {"timeseries", "stat", "state-timeline", "table", "row"}


def test_every_panel_and_target_uses_the_templated_datasource(every_dashboards):
    for d in every_dashboards.values():
        for p, t in targets(d):
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert d["annotations"]["list"][1]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_datasource_job_and_instance_variables(every_dashboards):
    for d in every_dashboards.values():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        cluster = ["cluster"] if "cluster" in variables else []  # fleets (service.cluster_label)
        assert list(variables) == ["datasource", *cluster, "job", "instance"]
        ds = variables["datasource"]
        assert (ds["type"], ds["query"], ds["label"]) == ("datasource", "prometheus", "Data source")
        for name in ("job", "instance"):
            v = variables[name]
            assert (v["type"], v["multi"], v["includeAll"], v["refresh"]) == ("query", True, True, 2)
        assert variables["instance"]["allValue"] == ".+"
        # All jobs means this service's jobs: on a shared Prometheus other services have the same metric names
        jobs = re.findall(r'job=~"([^"]*)"', variables["job"]["query"])
        assert jobs and variables["job"]["allValue"] == jobs[0].replace("\\\\", "\\")
        assert "$job" in variables["instance"]["query"]


def test_every_panel_has_title_description_unit_and_a_query(every_dashboards):
    for d in every_dashboards.values():
        for p in panels(d):
            assert p["title"] and p["description"], p
            assert p["fieldConfig"]["defaults"]["unit"], p["title"]
            assert p["targets"], p["title"]


def test_rates_use_rate_interval_and_counters_appear_only_inside_rates(every_dashboards):
    for d in every_dashboards.values():
        for p, t in targets(d):
            expr = t["expr"]
            for m in re.finditer(r"\b(?:rate|irate|increase)\((.*?)\[([^\]]+)\]\)", expr, re.S):
                assert m.group(2) == "$__rate_interval", expr
            outside = re.sub(r"\b(?:rate|irate|increase)\([^\[]*\[[^\]]+\]\)", "", expr)
            assert not COUNTER.search(outside), (p["title"], expr)


def test_selectors_filter_by_job_and_instance_variables(every_dashboards):
    """Raw series are filtered by the variables; recordings (``level:metric:ops``) are per service already."""
    for d in every_dashboards.values():
        for p, t in targets(d):
            for selector in re.findall(SELECTOR, t["expr"]):
                name, body = selector
                if name == "ALERTS":
                    assert 'alertstate="firing"' in body
                    continue
                if ":" in name:
                    assert 'service="' in body, (p["title"], t["expr"])
                    continue
                assert 'job=~"$job"' in body and 'instance=~"$instance"' in body, (p["title"], t["expr"])
                # an exporter's job tells its components apart and stays (its series, and the `up` of its targets);
                # the service's own `up` keeps its job too: every scrape target has an `up`, the exporters' as well;
                # the blackbox exporter's probes (`probe_*`) are its job's series, not the service's
                if not (name.startswith(("redis_", "probe_")) or name == "up"):
                    assert not re.search(r'\bjob="', body), t["expr"]  # the service's job matcher is replaced


def test_stat_panels_reduce_to_the_last_value(every_dashboards):
    for d in every_dashboards.values():
        for p in panels(d):
            if p["type"] == "stat":
                assert p["options"]["reduceOptions"]["calcs"] == ["lastNotNull"]


def test_thresholds_use_the_current_format(every_dashboards):
    for d in every_dashboards.values():
        for p in panels(d):
            th = p["fieldConfig"]["defaults"]["thresholds"]
            assert th["mode"] == "absolute"
            assert th["steps"][0]["value"] is None
            assert all(isinstance(s["value"], (int, float)) for s in th["steps"][1:])


def test_every_query_is_valid_promql(every_dashboards):
    for d in every_dashboards.values():
        queries = [t["expr"] for _, t in targets(d)] + [a["expr"] for a in d["annotations"]["list"] if "expr" in a]
        for expr in queries:
            promql_parser.parse(expr.replace("$__rate_interval", "5m"))


# --------------------------------------------------------------------------- alerts, runbooks, navigation

def test_firing_alerts_are_annotations(every_dashboards):
    for path, d in every_dashboards.items():
        exprs_ = [a.get("expr") for a in d["annotations"]["list"]]
        assert f'ALERTS{{service="{path.split("/")[0]}", alertstate="firing"}}' in exprs_


def test_panels_link_to_the_runbooks_of_their_alerts(every_spec, every_dashboards):
    # A component's missing metrics show on no panel (there is nothing to draw): its alert opens the component's
    # first panel instead (test_links.py).
    alert_names = alerts_of(every_spec) - {"ComponentMetricsMissing"}
    linked = set()
    for d in every_dashboards.values():
        for p in panels(d):
            for link in p.get("links", []):
                m = re.fullmatch(r"\.\./runbooks/(\w+)\.md", link["url"])
                if m:
                    assert m.group(1) in alert_names
                    linked.add(m.group(1))
    assert linked == alert_names


def test_overview_links_to_every_other_dashboard(maple_dashboards):
    overview = maple_dashboards["maple-expectation/dashboards/service-overview.json"]
    others = {d["uid"] for path, d in maple_dashboards.items() if "overview" not in path}
    assert {link["url"].split("/")[2] for link in overview["links"]} == others
    assert panel(overview, "Firing alerts")["type"] == "table"
    health = [p for p in panels(overview) if p["type"] == "stat"]
    # the service's instances, caches, breaker, retry, time limiter, executors, redis, lock, SLO
    assert len(health) == 1 + 4 + 1 + 1 + 1 + 2 + 1 + 1 + 1


def links_of(spec) -> dict[tuple, str]:
    """Every alert's deep link, by (alert, component, the labels that tell its rules apart)."""
    return {(a.name, a.component, tuple(sorted(a.tag.items()))): a.dashboard_url for a in build(spec).alerts}


def assert_links_land_on_their_runbooks(spec, rendered: dict):
    """Each alert's deep link opens a panel whose first runbook link is its own (a component's missing metrics
    have no panel of their own: they open the component's first panel)."""
    links = links_of(spec)
    assert {name for name, _, _ in links} == alerts_of(spec)
    by_uid = {d["uid"]: d for d in rendered.values()}
    for (alert, component, _), url in links.items():
        uid, pid = re.fullmatch(r"/d/([\w-]+)/[\w-]+\?viewPanel=(\d+)(?:&.*)?", url).groups()
        p = next(p for p in by_uid[uid]["panels"] if p["id"] == int(pid))
        if alert != "ComponentMetricsMissing":
            assert p["links"][0]["url"] == f"../runbooks/{alert}.md", (alert, component, p["title"])


def test_dashboard_links_point_every_alert_at_its_main_panel(maple, maple_dashboards):
    assert_links_land_on_their_runbooks(maple, maple_dashboards)
    links = links_of(maple)
    assert links[("ExecutorQueueFull", "expectationComputeExecutor", ())].endswith("viewPanel=3")
    assert links[("ExecutorQueueFull", "alertTaskExecutor", ())].endswith("viewPanel=8")
    assert "redis-operations" in links[("RedisSentinelQuorumAtRisk", "main", ())]


def test_disabled_alerts_lose_their_runbook_links():
    spec = parse(SPEC.replace("[{name: products}]", "[{name: products, alerts: {CacheStampede: {enabled: false}}}]"),
                 "x.yaml")
    assert "CacheStampede" not in {name for name, _, _ in links_of(spec)}
    assert "CacheStampede.md" not in "".join(dashboards.render(build(spec)).values())


# --------------------------------------------------------------------------- panel by panel

def test_hit_ratio_panel_queries_cache_gets_with_the_cache_label_and_draws_its_target(small):
    p = panel(small["cache-performance"], "products: hit ratio")
    assert p["type"] == "timeseries" and p["fieldConfig"]["defaults"]["unit"] == "percentunit"
    (expr,) = exprs(p)
    # hits (or 0 where the cache served lookups without a hit), over lookups
    assert expr.count("cache_gets_total{") == 3 and expr.count('cache="products"') == 3
    assert 'result="hit"' in expr and 'namespace="prod"' in expr
    assert steps(p) == [("red", None), ("green", 0.8)]
    assert p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"


def test_stampede_panel_draws_ten_per_second(small):
    p = panel(small["cache-performance"], "lock failures")
    assert steps(p) == [("green", None), ("red", 10)]
    assert "rate(cache_lock_failure_total{" in exprs(p)[0]


def test_tiered_caches_get_one_hit_ratio_panel_per_tier_with_its_own_target(maple_dashboards):
    d = maple_dashboards["maple-expectation/dashboards/cache-performance.json"]
    l1, l2 = panel(d, "equipment: hit ratio L1"), panel(d, "equipment: hit ratio L2")
    assert 'layer="L1"' in exprs(l1)[0] and steps(l1)[1] == ("green", 0.8)
    assert 'layer="L2"' in exprs(l2)[0] and steps(l2)[1] == ("green", 0.9)


def test_queue_panel_draws_capacity_and_ninety_percent_line(small):
    p = panel(small["thread-pool"], "mailer: queue depth")
    assert steps(p) == [("green", None), ("orange", 90), ("red", 100)]
    assert p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"
    assert "executor_queued_tasks{" in exprs(p)[0]


def test_threads_panel_shows_active_against_pool_size(small):
    p = panel(small["thread-pool"], "active threads vs pool size")
    assert [re.search(r"\((\w+)\{", e).group(1) for e in exprs(p)] == ["executor_active_threads",
                                                                "executor_pool_size_threads"]


def test_breaker_state_is_a_state_timeline_with_named_states(small):
    p = panel(small["circuit-breaker"], "payments: state")
    assert p["type"] == "state-timeline"
    assert "resilience4j_circuitbreaker_state{" in exprs(p)[0] and 'name="payments"' in exprs(p)[0]
    names = {o["text"] for m in p["fieldConfig"]["defaults"]["mappings"] for o in m["options"].values()}
    assert {"closed", "open", "half_open"} <= names


def test_breaker_failure_rate_hides_minus_one_and_draws_warning_and_open_lines(small):
    p = panel(small["circuit-breaker"], "failure rate")
    assert exprs(p)[0].endswith(">= 0")
    assert steps(p) == [("green", None), ("orange", 40), ("red", 50)]


def test_sentinel_panel_shows_the_quorum_threshold(small):
    p = panel(small["redis-operations"], "healthy sentinels vs quorum")
    assert "redis_sentinel_master_ok_sentinels{" in exprs(p)[0] and 'master_name="mymaster"' in exprs(p)[0]
    assert steps(p) == [("red", None), ("green", 2)]


def test_redis_dashboard_covers_operations(small):
    titles = " | ".join(p["title"] for p in panels(small["redis-operations"]))
    for part in ("up", "role", "master address", "replication link", "healthy replicas", "memory vs maxmemory",
                 "clients", "rejected connections", "evicted keys"):
        assert f"sessions: {part}" in titles
    assert 'job=~"$job"' in exprs(panel(small["redis-operations"], "sessions: up"))[0]


def test_overview_health_stats_colour_each_query_by_its_own_target(small):
    p = panel(small["service-overview"], "Redis sessions")
    overrides = {o["matcher"]["options"]: o["properties"][0]["value"]["steps"] for o in p["fieldConfig"]["overrides"]}
    assert overrides["A"][1]["value"] == 2  # master + one replica up
    assert overrides["B"][1]["value"] == 2  # quorum
    assert any(link["url"].startswith("/d/shop-redis-operations/") for link in p["links"])


def test_job_variable_offers_the_jobs_of_the_dashboards_components(small):
    def job_query(d):
        return next(v for v in d["templating"]["list"] if v["name"] == "job")["query"]
    assert job_query(small["redis-operations"]) == 'label_values(up{job=~"redis"}, job)'
    assert job_query(small["service-overview"]) == 'label_values(up{job=~"redis|shop"}, job)'


def test_every_allow_list_entry_is_still_needed(maple_dashboards):
    used = set()
    for d in maple_dashboards.values():
        for p in d["panels"]:
            branch = "RowPanel" if p["type"] == "row" else "Panel"
            sub = {"$ref": f"#/definitions/{branch}", "definitions": SCHEMA["definitions"]}
            for e in jsonschema.Draft7Validator(sub).iter_errors(p):
                path = "panels/0/" + "/".join(map(str, e.absolute_path))
                used |= {pat for pat, kw, _ in ALLOWED if re.search(pat, path) and e.validator == kw}
        for e in jsonschema.Draft7Validator(SCHEMA).iter_errors({**d, "panels": []}):
            path = "/".join(map(str, e.absolute_path))
            used |= {pat for pat, kw, _ in ALLOWED if re.search(pat, path) and e.validator == kw}
    assert used == {pat for pat, _, _ in ALLOWED}


def test_grafanalib_stays_behind_one_module_and_is_not_imported_at_start_up():
    importers = [p.name for p in (ROOT / "obsgen").rglob("*.py") if re.search(r"^\s*(from|import) grafanalib", p.read_text("utf-8"), re.M)
                 and p.name != "grafana.py"]
    assert importers == []
    import subprocess
    import sys
    code = "import sys, obsgen.render.dashboards, obsgen.components.viz, obsgen.spec; assert 'grafanalib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --------------------------------------------------------------------------- the small specs under tests/specs/valid

@pytest.mark.parametrize("path", VALID_SPECS, ids=lambda p: p.stem)
def test_valid_spec_dashboards_match_grafanas_schema_and_lint_rules(path):
    """Every kind's panels, not only Maple's, pass the schema and the linter rules. Custom-signal panels show the
    team's own PromQL verbatim (what its alert judges), so they are exempt from the job/instance and
    $__rate_interval rules."""
    for text in dashboards.render(build(load(path))).values():
        d = json.loads(text)
        assert schema_errors({**d, "panels": []}) == [], path
        for p in panels(d):
            sub = {"$ref": "#/definitions/Panel", "definitions": SCHEMA["definitions"]}
            errors = [e.message for e in jsonschema.Draft7Validator(sub).iter_errors(p)
                      if not any(re.search(pat, "panels/0/" + "/".join(map(str, e.absolute_path)))
                                 and e.validator == kw for pat, kw, _ in ALLOWED)]
            assert errors == [], (path.stem, p["title"])
            assert p["type"] in {"timeseries", "stat", "state-timeline", "table"}
            assert p["title"] and p["description"] and p["fieldConfig"]["defaults"]["unit"] and p["targets"]
            for t in p["targets"]:
                promql_parser.parse(t["expr"].replace("$__rate_interval", "5m"))
                custom = d["uid"].endswith("custom-signals") or any("custom-signals/" in link["url"]
                                                                   for link in p.get("links", []))
                if custom or (p["type"] == "table" and "ALERTS{" in t["expr"]):
                    continue
                expr = t["expr"]
                assert all(m == "$__rate_interval" for m in re.findall(r"\b(?:rate|irate|increase)\([^\[]*\[([^\]]+)\]",
                                                                        expr)), expr
                assert not COUNTER.search(re.sub(r"\b(?:rate|irate|increase)\([^\[]*\[[^\]]+\]\)", "", expr)), expr
                for name, body in re.findall(SELECTOR, expr):
                    if ":" in name:  # a recording (level:metric:ops) is per service already
                        assert "service=" in body, (p["title"], expr)
                        continue
                    assert 'job=~"$job"' in body and 'instance=~"$instance"' in body, (p["title"], expr)


@pytest.mark.parametrize("path", VALID_SPECS, ids=lambda p: p.stem)
def test_small_specs_link_every_alert_to_a_panel_that_links_its_runbook(path):
    spec = load(path)
    assert_links_land_on_their_runbooks(spec, {p: json.loads(t) for p, t in dashboards.render(build(spec)).items()})


@pytest.fixture(scope="module")
def fastapi():
    spec = load(ROOT / "tests/specs/valid/http-python.yaml")
    return {json.loads(t)["uid"].removeprefix("fastapi-http-"): json.loads(t) for t in dashboards.render(build(spec)).values()}


def test_http_percentile_panels_read_the_instrumentator_histogram_by_handler_and_draw_the_thresholds(fastapi):
    p95, p99 = panel(fastapi["http"], "p95 latency"), panel(fastapi["http"], "p99 latency")
    assert exprs(p99)[0].startswith("histogram_quantile(0.99, sum by (handler, le) (rate("
                                    "http_request_duration_seconds_bucket{")
    assert steps(p95) == [("green", None), ("red", 1)] and steps(p99) == [("green", None), ("red", 2)]
    assert p99["fieldConfig"]["defaults"]["unit"] == "s"
    mean = panel(fastapi["http"], "average latency")
    assert "http_request_duration_seconds_sum{" in exprs(mean)[0] and steps(mean)[1] == ("red", 0.5)


def test_http_error_panel_divides_5xx_by_all_requests_per_route_and_draws_one_percent(fastapi):
    p = panel(fastapi["http"], "5xx ratio by route")
    (expr,) = exprs(p)
    errors, requests = expr.split("\n/\n")
    requests, idle = requests.split("\nor\n")  # 0 where no 5xx series exists yet or no request came
    assert errors.startswith("sum by (handler) (rate(http_requests_total{") and 'status="5xx"' in errors
    assert requests.startswith("(sum by (handler) (rate(http_requests_total{") and "status" not in requests
    assert idle == "0 * " + requests.removeprefix("(").removesuffix(" > 0)")
    assert steps(p) == [("green", None), ("red", 0.01)]
    assert "orders/stream: 5xx 5%" in p["description"]


def test_python_breaker_panels_derive_the_failure_share_from_calls_and_show_the_enum_state():
    spec = load(ROOT / "tests/specs/valid/python-resilience.yaml")
    d = next(json.loads(t) for path, t in dashboards.render(build(spec)).items() if path.endswith("circuit-breaker.json"))
    titles = [p["title"] for p in panels(d)]
    assert "terminus_db: failure rate" not in titles and "terminus_db: slow call rate" not in titles
    share = panel(d, "terminus_db: failed share of calls")
    failed, calls = exprs(share)[0].split("\n/\n")
    assert 'circuit_breaker_calls_total{name="terminus_db", result="failure"' in failed and "result" not in calls
    assert steps(share) == [("green", None), ("orange", 0.16), ("red", 0.2)]
    state = panel(d, "terminus_db: state")
    assert exprs(state)[0].startswith("max by (instance) (circuit_breaker_state{")
    names = {o["text"]: v for m in state["fieldConfig"]["defaults"]["mappings"] for v, o in m["options"].items()}
    assert names == {"closed": "0", "half_open": "1", "open": "2"}


def test_python_cache_panels_draw_hits_and_lookups_and_misses_as_their_difference():
    spec = load(ROOT / "tests/specs/valid/python-resilience.yaml")
    d = next(json.loads(t) for path, t in dashboards.render(build(spec)).items() if path.endswith("cache-performance.json"))
    lookups = panel(d, "schemas: request rate")
    assert [t["legendFormat"] for t in lookups["targets"]] == ["lookups", "hits"]
    misses = exprs(panel(d, "schemas: misses"))[0]
    assert "cache_requests_total{" in misses.split("\n-\n")[0] and "cache_hits_total{" in misses.split("\n-\n")[1]


# --------------------------------------------------------------------------- backpressure, rate limiters, locks, pools

def concern(name: str, slug: str) -> dict:
    spec = load(ROOT / "tests/specs/valid" / f"{name}.yaml")
    return {Path(path).stem: json.loads(text) for path, text in dashboards.render(build(spec)).items()}[slug]


def test_maple_lock_panel_draws_the_p95_of_the_acquire_histogram_with_target_and_limit(maple_dashboards):
    p = panel(maple_dashboards["maple-expectation/dashboards/distributed-locks.json"], "redisLock: acquire latency p95")
    first = exprs(p)[0]
    assert first.startswith("histogram_quantile(0.95, sum by (le) (rate(lock_acquire_seconds_bucket{")
    assert 'lock="redisLock"' in first and first.endswith("[$__rate_interval])))")
    assert steps(p) == [("green", None), ("orange", 0.01), ("red", 0.1)]  # 10 ms objective, 100 ms limit
    assert p["fieldConfig"]["defaults"]["unit"] == "s"


def test_python_bulkhead_queue_panel_uses_the_apps_label_and_draws_capacity_and_ninety_percent():
    d = concern("backpressure-python", "backpressure")
    queue = panel(d, "heavy_operation: queue depth")
    assert "backpressure_queue_size{" in exprs(queue)[0] and 'circuit_name="heavy_operation"' in exprs(queue)[0]
    assert steps(queue) == [("green", None), ("orange", 900), ("red", 1000)]
    busy = panel(d, "heavy_operation: calls in progress")
    assert "backpressure_active_requests{" in exprs(busy)[0] and steps(busy) == [("green", None), ("red", 100)]
    assert "HTTP 503" in panel(d, "heavy_operation: shed calls")["description"]


def test_semaphore_bulkhead_is_drawn_by_its_free_permits_and_has_no_queue_panel():
    d = concern("backpressure-micrometer", "backpressure")
    free = panel(d, "inventory: free permits")
    assert "resilience4j_bulkhead_available_concurrent_calls{" in exprs(free)[0]
    assert steps(free) == [("red", None), ("green", 1)]
    assert not [p for p in panels(d) if p["title"] == "inventory: queue depth"]
    assert "resilience4j_bulkhead_queue_depth{" in exprs(panel(d, "pricing: queue depth"))[0]


def test_rate_limiter_shows_waiting_callers_only_where_the_library_counts_them():
    java = concern("rate-limiter-micrometer", "backpressure")
    assert "resilience4j_ratelimiter_waiting_threads{" in exprs(panel(java, "partnerApi: waiting callers"))[0]
    assert "resilience4j_ratelimiter_available_permissions{" in exprs(panel(java, "partnerApi: available permits"))[0]
    python = concern("rate-limiter-python", "backpressure")
    assert not [p for p in panels(python) if "waiting" in p["title"]]
    assert "rate_limiter_rejected_total{" in exprs(panel(python, "sms: rejected calls"))[0]


def test_sqlalchemy_pool_draws_pool_size_and_overflow_limit_and_has_no_waiting_panel():
    d = concern("db-pool-sqlalchemy", "database")
    p = panel(d, "main: connections in use")
    assert [re.search(r"\((\w+)\{", e).group(1) for e in exprs(p)] == ["db_pool_checked_out_connections",
                                                                       "db_pool_checked_in_connections"]
    assert steps(p) == [("green", None), ("orange", 5), ("red", 15)]
    assert not [p for p in panels(d) if "waiting" in p["title"] or "acquire time" in p["title"]]


def test_hikari_pool_draws_waiting_threads_and_average_acquire_time():
    d = concern("db-pool-hikari", "database")
    assert steps(panel(d, "HikariPool-1: connections in use")) == [("green", None), ("red", 10)]
    assert "hikaricp_connections_pending{" in exprs(panel(d, "HikariPool-1: waiting callers"))[0]
    (acquire,) = exprs(panel(d, "HikariPool-1: average acquire time"))
    assert "hikaricp_connections_acquire_seconds_sum{" in acquire and "hikaricp_connections_acquire_seconds_count{" in acquire


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_grafanalib_objects_become_the_data_a_json_round_trip_gives(path):
    """grafana._plain is json.loads(json.dumps(..., cls=DashboardEncoder)) without nulls, in one pass."""
    from grafanalib._gen import DashboardEncoder

    from obsgen.render import grafana

    for d in build(load(path)).dashboards:
        built = grafana._build(d, "../runbooks/")
        expected = grafana._drop_nulls(json.loads(json.dumps(built.to_json_data(), cls=DashboardEncoder)))
        assert json.dumps(grafana._plain(built)) == json.dumps(expected)


class _Text(str):
    pass


@pytest.mark.parametrize("data", [{1: "int key"}, {"a": _Text("sub")}, {"a": {1, 2}}], ids=["int-key", "str-subclass", "set"])
def test_what_plain_data_does_not_answer_is_left_to_the_round_trip(data):
    from obsgen.render import grafana

    with pytest.raises(grafana._Unusual):
        grafana._plain(data)
