"""Every spec's generated rules pass promtool's lint and their generated unit tests pass,
and those unit tests are strong enough to catch a broken rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SPECS, VALID_SPECS, assert_mutation_caught, build_into, load_spec, promtool, unit_tests
from obsgen.spec import load

pytestmark = pytest.mark.promtool

# Every spec, each environment of one with `environments:` on its own (each is a rule set of its own).
RULE_SETS = [(path, env) for path in SPECS + VALID_SPECS
             for env in [name for name, _ in load_spec(path).environments] or [None]]


@pytest.fixture(scope="module", params=RULE_SETS, ids=lambda c: c[0].stem + (f"-{c[1]}" if c[1] else ""))
def built(request, tmp_path_factory) -> Path:
    path, env = request.param
    spec = load(path)
    spec = spec.environment(env) if env else spec
    out = tmp_path_factory.mktemp(path.stem)
    build_into(out, spec)
    return out / spec.service.name / "prometheus"


def rule_files(prom: Path) -> list[str]:
    return sorted(p.name for p in prom.glob("*.yaml") if not p.name.endswith(".test.yaml"))


def test_rules_pass_promtool_lint(built):
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", *rule_files(built), cwd=built)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_file_has_generated_unit_tests_that_pass(built):
    files = unit_tests(built)
    assert {f.split(".")[0] for f in files} == {f.removesuffix(".yaml") for f in rule_files(built)}
    result = promtool("test", "rules", *files, cwd=built)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_component_is_tested_alone_on_a_copy_of_exactly_its_deployed_rules(built):
    """promtool evaluates every rule a test file loads at every step, so a component's tests load only a copy of
    its own rules (``components/<key>.yaml``, or of those a test file checks, ``components/<key>.<clock>.yaml``,
    and those of components whose recordings it reads): each copy must hold its rules exactly as the deployed
    file has them, in the order of one of its groups; every alert a test checks must be loaded, or a "stays
    silent" check of an alert promtool never evaluates would pass proving nothing; and every recording of that
    group a loaded rule reads must be loaded, or the firing checks would fail on a recording promtool never
    made (or the rule would be proven on other data than it reads)."""
    import re

    import yaml

    def rule_texts(body: str) -> list[str]:
        return re.split(r"(?m)^(?=  - )", body)[1:]

    copies = {p.name: p.read_text() for p in (built / "components").glob("*.yaml")}
    deployed = {f: (built / f).read_text() for f in rule_files(built)}
    group_rules = {}
    for name, text in copies.items():
        body = "\n".join(line for line in text.splitlines() if not line.startswith("#")) + "\n"
        (group,) = yaml.safe_load(body)["groups"]
        head, rules = body.split("  rules:\n", 1)
        assert head == f"groups:\n- name: {group['name']}\n", name
        owner = [t for t in deployed.values() if f"\n- name: {group['name']}\n" in t]
        deployed_group = owner[0].split(f"\n- name: {group['name']}\n", 1)[1].split("\n- name: ")[0] + "\n"
        wanted, found = rule_texts(rules), iter(rule_texts(deployed_group.split("  rules:\n", 1)[1]))
        assert all(any(rule.rstrip() == there.rstrip() for there in found) for rule in wanted), (
            f"components/{name} is not its group's deployed rules, in their order")
        group_rules[name] = yaml.safe_load("rules:\n" + deployed_group.split("  rules:\n", 1)[1])["rules"]
    loaded_copies = set()
    for name in unit_tests(built):
        test = yaml.safe_load((built / name).read_text())
        rules = [r for f in test["rule_files"] for g in yaml.safe_load((built / f).read_text())["groups"]
                 for r in g["rules"]]
        checked = {c["alertname"] for t in test["tests"] for c in t["alert_rule_test"]}
        assert checked <= {r.get("alert") for r in rules}, f"{name} checks alerts it does not load: {sorted(checked)}"
        for f in test["rule_files"]:
            group = group_rules.get(f.removeprefix("components/")) or [
                r for g in yaml.safe_load((built / f).read_text())["groups"] for r in g["rules"]]
            recorded = {r["record"] for r in group if "record" in r}
            read = {n for r in rules for n in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", r["expr"])} & recorded
            assert read <= {r.get("record") for r in rules}, f"{name} reads recordings it does not load: {read}"
        loaded_copies |= {f.removeprefix("components/") for f in test["rule_files"]}
    assert set(copies) <= loaded_copies, "a copy no test loads"


def test_no_story_is_replayed_twice_with_the_same_series(built):
    """promtool's work is evaluations times rules for every test entry: stories told with the very same series
    (the service down, for every presence alert of a group) share one entry instead of replaying it."""
    import yaml

    for name in unit_tests(built):
        inputs = [sorted((s["series"], s["values"]) for s in t["input_series"])
                  for t in yaml.safe_load((built / name).read_text())["tests"]]
        assert not [i for n, i in enumerate(inputs) if i in inputs[:n]], f"{name} replays a story"


# Each mutation breaks one trap the rules are built to avoid; the generated tests must catch it.
MUTATIONS = {
    "breaker open ignoring half-open misses a re-opening breaker": (r'state=~"open\|half_open\|forced_open"', 'state=~"open"'),
    "breaker state without a state matcher fires on closed breakers": (r', state=~"open\|half_open\|forced_open"', ""),
    "hit ratio without the traffic guard fires on idle caches": (r"\n *and\n *instance_cache:requests:rate5m\{[^}]*\} >= 1", ""),
    "memory ratio without the maxmemory guard fires without a limit": (r"\n *and\n *redis_memory_max_bytes\{[^}]*\} > 0", ""),
    "queue alert without `for` pages on a spike": (r"(alert: ExecutorQueueFull\n(?:.*\n){1,3}?    for: )1m", r"\g<1>0s"),
    "hit ratio threshold off by a tier": (r"< 0.8\n", "< 0.3\n"),
    "hit ratio threshold moved a tenth toward 0 lets a cache missing a quarter of lookups pass": (r"< 0.8\n", "< 0.7\n"),
    # Stories of a long `for` are evaluated every minute: a `for` halved, or dropped, is still caught.
    "hit-ratio `for` halved pages on a passing dip": (r"(alert: CacheHitRateLow\n(?:.*\n){1,5}?    for: )15m", r"\g<1>7m"),
    "L2-failure alert without `for` pages on one failed write": (
        r"(alert: CacheL2Unavailable\n(?:.*\n){1,5}?    for: )5m", r"\g<1>0s"),
    "stampede counted with delta trips on a restart": (r"rate\(cache_lock_failure_total", "delta(cache_lock_failure_total"),
    "failover window too short": (r"(last_over_time\([^\n]*)\[5m\]\)", r"\g<1>[1m])"),
    # ComponentMetricsMissing's stories run on a one-minute clock: a `for` one evaluation off either way is caught.
    "metrics-missing `for` a minute short fires before its time": (
        r"(alert: ComponentMetricsMissing\n(?:.*\n){1,5}?    for: )30m", r"\g<1>29m"),
    "metrics-missing `for` a minute long fires late": (
        r"(alert: ComponentMetricsMissing\n(?:.*\n){1,5}?    for: )30m", r"\g<1>31m"),
    "burn-rate page without its low-traffic guard pages on one failed request": (
        r"(alert: ErrorBudgetBurnFast\n(?:.*\n)*?.*)\n *and\n *slo:sli_requests:rate1h\{[^}]*\} \* 3600 >= \d+", r"\g<1>"),
    "burn-rate page without its short window keeps paging after the burn stopped": (
        r"(alert: ErrorBudgetBurnFast\n(?:.*\n)*?.*)\n *and\n *slo:sli_error:burn_rate5m\{[^}]*\} > [0-9.]+", r"\g<1>"),
    "slow burn without its 6h condition misses a 6h burn": (
        r"\(\n *slo:sli_error:burn_rate6h\{[^}]*\} > 6\n(?:.*\n){4} *\)\n *or\n *", ""),
    "burn threshold off by a factor pages on a budget-neutral burn": (r"> 14.4\n", "> 0.5\n"),
    "burn rates of a young TSDB taken as a full window's page on minutes of errors": (
        r" \* clamp_max\(\(time\(\) -\s+slo:sli_requests:since\{[^}]*\}\) / \d+, 1\)", ""),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS), ids=lambda m: m.replace(" ", "-"))
def test_generated_tests_catch_a_broken_rule(mutation, tmp_path, maple):
    pattern, replacement = MUTATIONS[mutation]
    assert_mutation_caught(tmp_path, maple, pattern, replacement, mutation)


# The same, for the kinds only the small specs under tests/specs/valid exercise: (spec, pattern, replacement).
SMALL_SPEC_MUTATIONS = {
    "http error ratio without the traffic guard fires on a few errors at low traffic": (
        "http-python", r"\n *and\n *route:http_requests:rate5m\{[^\n]*\} >= 0.2", ""),
    "http latency without `for` pages on a spike shorter than `for`": (
        "http-python", r"(alert: HttpLatencyHigh\n(?:.*\n){1,6}?    for: )10m", r"\g<1>0s"),
    "http latency percentile without the histogram's traffic guard fires on an idle route": (
        "http-micrometer", r"\n *and ignoring \(quantile\)\n *route:http_request_duration_seconds_count:rate5m\{[^\n]*\}"
                           r" >= \d+", ""),
    "breaker not-opening without the closed check fires on a breaker that opened": (
        "python-resilience", r"\n *and\n *max by \(instance, name\) \(max_over_time\([^\n]*\) == 0", ""),
    "breaker not-opening without the failure minimum fires on a few calls": (
        "python-resilience", r"\n *and\n *sum by \(instance, name\) \(increase\([^\n]*\) >= 3", ""),
    "breaker not-opening one-hot check without the closed matcher never fires": (
        "http-micrometer", r'(min_over_time\(resilience4j_circuitbreaker_state\{[^}]*), state="closed"', r"\g<1>"),
    "etag never-304 comparing hits to zero misses a hit series that was never created": (
        "etag-python", r"unless (on \([^)]*\)\n *sum by [^\n]*\)) > 0", r"and \g<1> == 0"),
    "etag never-304 without the conditional-request minimum fires on a few requests": (
        "etag-python", r">= 20\n( *)unless", r">= 0\n\g<1>unless"),
}


@pytest.mark.parametrize("mutation", sorted(SMALL_SPEC_MUTATIONS), ids=lambda m: m.replace(" ", "-"))
def test_generated_tests_of_the_small_specs_catch_a_broken_rule(mutation, tmp_path):
    name, pattern, replacement = SMALL_SPEC_MUTATIONS[mutation]
    assert_mutation_caught(tmp_path, load(next(p for p in VALID_SPECS if p.stem == name)), pattern, replacement,
                           mutation)


# The same for the kinds the small specs exercise: (spec under specs/ or tests/specs/valid/, pattern, replacement).
SPEC_MUTATIONS = {
    "lock percentile without the traffic guard fires on an idle lock": (
        "maple", r'\n *and\n *sum by \(lock\) \(rate\(lock_acquire_seconds_bucket\{[^}]*le="\+Inf"\}\[5m\]\)\) >= 0.1', ""),
    "lock p99 instead of p95 fires on a tail the p95 leaves out": (
        "maple", r"histogram_quantile\(0.95, sum by \(le, lock\) \(rate\(lock_acquire", "histogram_quantile(0.99, sum by (le, lock) (rate(lock_acquire"),
    "quantile without `le` in the grouping never fires": ("lock-python", r"sum by \(le, lock\)", "sum by (lock)"),
    "quantile of bucket deltas breaks on a counter reset": (
        "lock-python", r"\(rate\(lock_acquire_seconds_bucket", "(delta(lock_acquire_seconds_bucket"),
    "pool exhaustion without waiters fires on a pool keeping up": (
        "db-pool-hikari", r"\n *and\n *max by \(instance, pool\) \(hikaricp_connections_pending\{[^}]*\}\) > 0", ""),
    "pool exhaustion at pool_size ignores the overflow": ("db-pool-sqlalchemy", r"\) >= 15\n", ") >= 5\n"),
    "saturation without the queue condition fires on a bulkhead keeping up": (
        "backpressure-python", r"\n *and\n *max by \(instance, circuit_name\) \(backpressure_queue_size\{[^}]*\}\) > 0", ""),
    "queue alert at capacity instead of 90% misses a nearly full queue": ("backpressure-python", r">= 900\n", ">= 1000\n"),
    "free permits below 0 instead of at 0 miss a full semaphore bulkhead": (
        "backpressure-micrometer", r"(resilience4j_bulkhead_available_concurrent_calls\{[^}]*\}\) )<= 0", r"\g<1>< 0"),
    "redirect share without the traffic guard fires on a few redirects at low traffic": (
        "oms", r"(\) > 0\.05)\n *and on \(service, component\)\n *sum by \(service, component\) "
               r"\(route:http_requests:rate5m\{[^\n]*\}\) >= 1", r"\g<1>"),
    "redirect threshold under the near miss fires on a route just under it": (
        "oms", r"\) > 0\.05(\n *and on \(service, component\))", r") > 0.04\g<1>"),
    "client timeouts read from a bucket under the timeout miss every slow request": (
        "oms", r'le=~"1\|1\\\\.0"', 'le=~"0.5"'),
    "client timeouts threshold under the near miss fires on a route just under it": (
        "oms", r"(slower_ratio_rate5m\{[^\n]*\}) > 0.01", r"\g<1> > 0.0085"),
    "permit exhaustion without `for` fires on a burst": (
        "rate-limiter-micrometer", r"(alert: RateLimiterPermitsExhausted\n(?:.*\n){1,3}?    for: )5m", r"\g<1>0s"),
}
SPEC_FILES = {p.stem: p for p in SPECS + VALID_SPECS}


@pytest.mark.parametrize("mutation", sorted(SPEC_MUTATIONS), ids=lambda m: m.replace(" ", "-"))
def test_generated_tests_of_every_kind_catch_a_broken_rule(mutation, tmp_path):
    name, pattern, replacement = SPEC_MUTATIONS[mutation]
    assert_mutation_caught(tmp_path, load(SPEC_FILES[name]), pattern, replacement, mutation)