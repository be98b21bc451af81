"""Custom signals: any PromQL the team writes, with a threshold, a `for`, a unit, a severity and a runbook.

For business metrics no kind knows (orders per hour). The user's
expression is *the signal*; obsgen adds the comparison. It is parsed at validate
time with ``promql-parser`` (a runtime dependency: a Rust wheel, compatible with
Prometheus 2.45's PromQL) so a typo is a located spec error, not a broken rule
file. The rule, the panels and the runbook print it from obsgen's PromQL nodes
with the one printer (comments dropped; raw strings written as the quoted
strings that mean the same), in parentheses of its own:

    (
      <expr>
    )
    <op> <threshold>

Proof. obsgen cannot know the input series of arbitrary PromQL, so every custom
alert must be proven one of two ways, enforced at validate time:

* derived: when the expression is a plain selector, or ``rate``/``irate``/
  ``increase`` of one, optionally inside one ``sum``/``min``/``max``/``avg``, and
  the selector names its metric with exact matchers only, obsgen writes the
  stories itself (bad value fires; good value, a short spike and a counter
  restart stay silent);
* written: otherwise a ``tests:`` block gives input series (promtool's expanding
  notation, a sample every 15 s), an evaluation time, whether the alert fires,
  and when it fires its labels and ``$value``. A custom component with neither is
  a spec error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import field
from functools import lru_cache

from obsgen.components.base import AlertDef, Built, Component, Concern, Finding, Given, Kind, Rule, Scenario, Series
from obsgen.components.shapes import verdict
from obsgen.components.timeline import MIN, RESTART, STEP, counter, gauge
from obsgen.components.viz import ComponentPanels, Panel, Query, above, below, pct
from obsgen.model.promql import Call, Expr, Offset, Paren, Range, binop, number, quote, regex_quote
from obsgen.model.promql import parse as parse_promql
from obsgen.model.records import record
from obsgen.model.rules import Check
from obsgen.model.types import AlertTuning, ComponentSpec, Duration, Labels, MetricRef

OPS = {">": "above", ">=": "at or above", "<": "below", "<=": "at or below", "==": "equal to", "!=": "not equal to"}
# Grafana unit id → what follows a number in prose ("percentunit" values are ratios, shown as percentages).
UNIT_TEXT = {"none": "", "short": "", "percent": "%", "percentunit": "", "s": " s", "ms": " ms", "bytes": " B",
             "reqps": " req/s", "ops": "/s", "opm": "/min"}
AGGREGATIONS = ("sum", "min", "max", "avg")
COUNTER_FUNCTIONS = ("rate", "irate", "increase")
FIVE_MIN = Duration.parse("5m")
WEEK = Duration.parse("1w")
VALUES = re.compile(r"^\s*(?:(?:stale|_(?:x\d+)?|[-+]?(?:Inf|NaN)|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
                    r"(?:[-+](?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?x\d+|x\d+)?)\s*)+$")


@record(kw_only=True)
class TestSeries:
    """One input series of a custom signal's test, in promtool's expanding notation."""

    series: str
    values: str


@record(kw_only=True)
class CustomTest:
    """A test the team writes for its custom alert: the series, the time and whether it fires then."""

    name: str
    at: Duration
    fires: bool
    series: list[TestSeries]
    labels: Labels
    value: float | None


@record(kw_only=True)
class CustomRunbook:
    """The runbook prose a team gives for its custom alert."""

    meaning: str
    impact: str
    actions: list[str]


@record(kw_only=True)
class CustomSpec(ComponentSpec):
    """One item of a spec's ``custom:`` list (custom signal), as the schema defaulted it."""

    # the team's expression selects its own series and is the alert: no component label, metrics or tuning
    label: str = "name"
    selector: Labels = field(default_factory=dict)
    metrics: dict[str, MetricRef] = field(default_factory=dict)
    alerts: dict[str, AlertTuning] = field(default_factory=dict)
    expr: str
    op: str
    threshold: float
    for_: Duration
    unit: str
    severity: str
    alert: str | None
    summary: str | None
    runbook: CustomRunbook
    tests: list[CustomTest]


# --------------------------------------------------------------------------- reading the expression


class PromQLError(ValueError):
    """The expression is not PromQL an alert can compare against a threshold."""


@record
class Derivable:
    """An expression obsgen can write test data for: one metric, exact matchers, at most one aggregation."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    counter: bool
    factor: float  # expression value per unit of the series' slope: 1 for rate, the range in seconds for increase
    window: Duration
    kept: tuple[tuple[str, str], ...]  # labels the result keeps


Matchers = tuple[tuple[str, str, str], ...]  # (label, "=" | "!=" | "=~" | "!~", value)
MATCH_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


@record
class Analysis:
    """What obsgen reads from a custom expression: whether it can write test data for it (why not, if not),
    its jobs and its selectors."""

    derivable: Derivable | None
    why_not: str
    jobs: tuple[str, ...]
    selectors: tuple[tuple[str, Matchers], ...] = ()  # every vector selector: its metric name and matchers


def _value_type(node) -> str:
    import promql_parser as p

    if isinstance(node, (p.ParenExpr, p.UnaryExpr)):
        return _value_type(node.expr)
    if isinstance(node, (p.VectorSelector, p.AggregateExpr)):
        return "vector"
    if isinstance(node, (p.MatrixSelector, p.SubqueryExpr)):
        return "range vector"
    if isinstance(node, p.NumberLiteral):
        return "scalar"
    if isinstance(node, p.StringLiteral):
        return "string"
    if isinstance(node, p.Call):  # promql-parser's ValueType cannot be hashed: look it up by name
        return {"ValueType.Vector": "vector", "ValueType.Scalar": "scalar", "ValueType.Matrix": "range vector",
                "ValueType.String": "string"}[str(node.func.return_type)]
    if isinstance(node, p.BinaryExpr):
        sides = {_value_type(node.lhs), _value_type(node.rhs)}
        return "scalar" if sides == {"scalar"} else "vector"
    return "unknown"


def _strip(node):
    import promql_parser as p

    while isinstance(node, p.ParenExpr):
        node = node.expr
    return node


def _derive(root) -> tuple[Derivable | None, str]:
    import promql_parser as p

    node, kept_rule, aggregated = _strip(root), None, False
    if isinstance(node, p.AggregateExpr):
        aggregated = True
        if str(node.op) not in AGGREGATIONS or node.param is not None:
            return None, f"`{node.op}` is not one of {', '.join(AGGREGATIONS)}"
        kept_rule = node.modifier
        node = _strip(node.expr)
    counter_fn, window, factor = None, Duration(0), 1.0
    if isinstance(node, p.Call) and node.func.name in COUNTER_FUNCTIONS and isinstance(node.args[0], p.MatrixSelector):
        counter_fn = node.func.name
        window = Duration.seconds(node.args[0].range.total_seconds())
        factor = window.total_seconds if counter_fn == "increase" else 1.0
        node = node.args[0].vector_selector
    if not isinstance(node, p.VectorSelector):
        return None, "it is not a selector, or rate/irate/increase of one, inside at most one sum/min/max/avg"
    if node.offset is not None or node.at is not None:
        return None, "the selector has an offset or @ modifier"
    name, labels = node.name, {}
    for m in node.matchers.matchers:
        if m.op != p.MatchOp.Equal:
            return None, f"the matcher on `{m.name}` is not an exact `=` match"
        if m.name == "__name__":
            name = m.value
        else:
            labels[m.name] = m.value
    if not name:
        return None, "the selector names no metric"
    if kept_rule is None:
        kept = {} if aggregated else labels
    elif kept_rule.type == p.AggModifierType.By:
        kept = {k: v for k, v in labels.items() if k in kept_rule.labels}
    else:
        kept = {k: v for k, v in labels.items() if k not in kept_rule.labels}
    return Derivable(name, tuple(labels.items()), counter_fn is not None, factor, window,
                     tuple(sorted(kept.items()))), ""


def _cooked(text: str) -> str:
    """``text`` with every raw (backtick) string literal written as the double-quoted string that means the same.

    Prometheus reads no escapes between backticks (`` `/api/\\d+` `` is a regex for digits), but promql-parser
    0.12 does and refuses ``\\d``; a double-quoted string with the backslash escaped means the same to both.
    Quoted strings and ``#`` comments are copied as they are (a backtick inside them starts nothing).
    """
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            end = i + 1
            while end < len(text) and text[end] != ch:
                end += 2 if text[end] == "\\" else 1
            end += 1
            out.append(text[i:end])
        elif ch == "#":
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            out.append(text[i:end])
        elif ch == "`":
            close = text.find("`", i + 1)
            if close < 0:
                return text  # unterminated: the parser says so
            end = close + 1
            out.append(quote(text[i + 1:close]))
        else:
            end = i + 1
            out.append(ch)
        i = end
    return "".join(out)


@lru_cache(maxsize=256)
def analyse(expr: str) -> Analysis:
    """Parse ``expr`` and check it can be an alert's signal; raises :class:`PromQLError` saying why not."""
    import promql_parser as p

    try:
        root = p.parse(_cooked(expr))
    except (ValueError, RuntimeError) as exc:
        raise PromQLError(f"not valid PromQL: {exc}") from None
    try:
        parse_promql(_cooked(expr))  # the nodes the rule is printed from
    except ValueError as exc:
        raise PromQLError(f"obsgen cannot write this expression into a rule ({exc}); write it without that") from None
    kind = _value_type(root)
    if kind != "vector":
        raise PromQLError(f"the expression is a {kind}; an alert needs an instant vector (wrap a scalar in vector())")
    top = _strip(root)
    if isinstance(top, p.BinaryExpr) and str(top.op) in OPS and not (top.modifier and top.modifier.return_bool):
        raise PromQLError(f"`expr` is the signal, not the condition: move `{top.op} {top.rhs}` to `op` and "
                          "`threshold`")
    jobs: set[str] = set()
    problems: list[str] = []
    selectors: list[tuple[str, Matchers]] = []

    def visit(node):
        if isinstance(node, p.VectorSelector):
            if node.matchers.or_matchers:
                problems.append("`or` between label matchers needs Prometheus 3; write two selectors joined by `or`")
            jobs.update(m.value for m in node.matchers.matchers if m.name == "job" and m.op == p.MatchOp.Equal)
            matchers = tuple((m.name, MATCH_OPS[str(m.op)], m.value) for m in node.matchers.matchers)
            name = node.name or next((v for label, op, v in matchers if label == "__name__" and op == "="), "")
            selectors.append((name, matchers))
        return True

    p.walk(root, visit)
    if problems:
        raise PromQLError(problems[0])
    derivable, why = _derive(root)
    return Analysis(derivable, why, tuple(sorted(jobs)), tuple(selectors))


def _admits(matchers: Matchers, label: str, value: str) -> bool:
    """Whether a series whose ``label`` is ``value`` passes every matcher on that label (RE2 and Python's ``re``
    agree on the plain patterns route exclusions use)."""
    def one(op: str, pattern: str) -> bool:
        if op in ("=", "!="):
            return (value == pattern) == (op == "=")
        try:
            return bool(re.fullmatch(pattern, value)) == (op == "=~")
        except re.error:
            return True  # a pattern Python cannot read: say nothing rather than guess
    return all(one(op, pattern) for name, op, pattern in matchers if name == label)


def _probes_counted(given: Given, analysis: Analysis) -> list[Finding]:
    """A custom expression that counts the HTTP requests of the service's health-probe routes (``service.probe_routes``):
    three pods probing every few seconds meet a traffic guard of 1 req/s on a night without one guest."""
    from obsgen.components import http

    service = given.spec.get("service") if isinstance(given.spec.get("service"), Mapping) else {}
    probes = [r for r in service.get("probe_routes") or () if isinstance(r, str)]
    if not probes:
        return []
    profile = service.get("profile") if service.get("profile") in http.KIND.default_metrics else "micrometer"
    servers = [s for s in given.spec.get(http.KIND.key) or () if isinstance(s, Mapping)]
    given_refs = [s["metrics"].get("requests") for s in servers if isinstance(s.get("metrics"), Mapping)]
    counters = {http.KIND.default_metrics[profile]["requests"].name} | {
        MetricRef.of(ref).name for ref in given_refs
        if isinstance(ref, str) or (isinstance(ref, Mapping) and isinstance(ref.get("name"), str))}
    labels = ["handler" if profile == "python" else "uri"] + [s["route_label"] for s in servers
                                                              if isinstance(s.get("route_label"), str)]
    for name, matchers in analysis.selectors:
        counted = [r for r in probes if name in counters and all(_admits(matchers, label, r) for label in labels)]
        if counted:
            label = next((label for label, _, _ in matchers if label in labels), labels[0])
            left_out = "|".join(regex_quote(r) for r in probes)
            return [Finding(("expr",), (
                f"`{name}` here counts requests to the health-probe routes {', '.join(counted)} "
                f"(`service.probe_routes`): probes alone meet a traffic guard while no user is there; add "
                f"`{label}!~\"{left_out}\"` to its selector"))]
    return []


def parse_series(text: str) -> tuple[str, Labels]:
    """A promtool input series ``metric{label="value"}``: name and exact labels."""
    import promql_parser as p

    try:
        node = p.parse(_cooked(text))
    except (ValueError, RuntimeError) as exc:
        raise PromQLError(f"not a series: {exc}") from None
    if not isinstance(node, p.VectorSelector) or node.offset is not None or node.at is not None:
        raise PromQLError('a series is a metric name with exact labels, e.g. orders_created_total{store_id="1"}')
    labels = {}
    for m in node.matchers.matchers:
        if m.op != p.MatchOp.Equal or m.name == "__name__":
            raise PromQLError(f"series labels are exact `=` values; `{m.name}` is not")
        labels[m.name] = m.value
    if not node.name:
        raise PromQLError("the series names no metric")
    return node.name, labels


# --------------------------------------------------------------------------- names and words


def alert_name(spec: CustomSpec | dict) -> str:
    explicit = spec.get("alert") if isinstance(spec, dict) else spec.alert
    if explicit:
        return explicit
    name, op = (spec["name"], spec["op"]) if isinstance(spec, dict) else (spec.name, spec.op)
    camel = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)
    if not camel[:1].isalpha():
        camel = "Custom" + camel
    return camel + {">": "High", ">=": "High", "<": "Low", "<=": "Low"}.get(op, "")


def _shown(spec: CustomSpec, x: float) -> str:
    return pct(x) if spec.unit == "percentunit" else number(x) + _unit_text(spec.unit)


def _unit_text(unit: str) -> str:
    return " " + unit.split(":", 1)[1] if unit.startswith("suffix:") else UNIT_TEXT.get(unit, "")


def _value(spec: CustomSpec) -> str:
    if spec.unit == "percentunit":
        return "{{ $value | humanizePercentage }}"
    return "{{ $value | humanize }}" + _unit_text(spec.unit)


def condition(spec: CustomSpec) -> str:
    return f"the signal is {OPS[spec.op]} {_shown(spec, spec.threshold)} for {spec.for_}"


# --------------------------------------------------------------------------- checks


def _levels(op: str, t: float) -> tuple[float, float]:
    """(a value that fires, a value that does not) for ``<value> op t``."""
    up, down = (t * 2, t / 2) if t > 0 else (t + 1, t - 1)
    return {">": (up, down if t > 0 else t - 1), ">=": (up, down), "<": (down, up), "<=": (down, up),
            "==": (t, t + 1), "!=": (t + 1, t)}[op]


def check(given: Given) -> list[Finding]:
    from obsgen.components import KINDS

    item, out = given.item, []
    try:
        analysis = analyse(item["expr"])
    except PromQLError as exc:
        return [Finding(("expr",), str(exc))]
    out += _probes_counted(given, analysis)
    name = alert_name(item)
    if len(name) > 40:
        out.append(Finding(("name",), f"the alert name derived from it, `{name}`, is longer than 40 characters; "
                           "give a shorter `alert:`", key=True))
    owner = next((k.key for k in KINDS if k.key != KIND.key and name in {d.name for d in k.alerts}), None)
    if owner:
        where = ("alert",) if item.get("alert") else ("name",)
        out.append(Finding(where, f"alert `{name}` belongs to the {owner} kind; give this one its own `alert:` name"))
    siblings = given.spec.get(KIND.key, [])
    me = next(i for i, other in enumerate(siblings) if other is item)
    earlier = [i for i, other in enumerate(siblings[:me]) if alert_name(other) == name]
    if earlier:
        out.append(Finding(("alert",) if item.get("alert") else ("name",),
                           f"alert `{name}` is already custom[{earlier[0]}]'s; alert names name runbook pages, "
                           "give each custom alert its own"))
    tests = item.get("tests", [])
    if not tests:
        d = analysis.derivable
        if d is None:
            out.append(Finding(("expr",), f"obsgen cannot write test data for this expression ({analysis.why_not}); "
                               "add a `tests:` block with input series and the expected outcome "
                               "(docs/components.md#custom)"))
        else:
            fire, calm = _levels(item["op"], float(item["threshold"]))
            if d.counter and fire < 0:
                out.append(Finding(("threshold",), f"a rate is never {OPS[item['op']]} {number(item['threshold'])}: "
                                   "this alert can never fire"))
            elif d.counter and calm < 0:
                out.append(Finding(("threshold",), f"a rate is always {OPS[item['op']]} {number(item['threshold'])}: "
                                   "this alert would always fire"))
        return out
    if not any(t["fires"] for t in tests) or all(t["fires"] for t in tests):
        out.append(Finding(("tests",), "tests need at least one case where the alert fires and one where it must "
                           "not", key=True))
    for_ = Duration.parse(item["for"])
    for i, t in enumerate(tests):
        if t["fires"] and "value" not in t:
            out.append(Finding(("tests", i), "a firing case needs `value`: the signal's value when it fires "
                               "(the description shows it)"))
        if t["fires"] and Duration.parse(t["at"]) < for_:
            out.append(Finding(("tests", i, "at"), f"an alert cannot fire before its `for` ({for_}) has passed"))
        for j, s in enumerate(t["series"]):
            try:
                parse_series(s["series"])
            except PromQLError as exc:
                out.append(Finding(("tests", i, "series", j, "series"), str(exc)))
            if not VALUES.match(s["values"]):
                out.append(Finding(("tests", i, "series", j, "values"), "expected promtool's expanding notation, "
                                   "e.g. `0+10x20` or `1x5 _x3 stale` (a sample every 15s)"))
    return out


# --------------------------------------------------------------------------- rules


def signal(spec: CustomSpec) -> Expr:
    """The team's expression, read into obsgen's PromQL nodes (printed the same way as every rule)."""
    return parse_promql(_cooked(spec.expr))


def last_week(spec: CustomSpec) -> Expr:
    """The signal as it was a week earlier: its last value in a 5m subquery moved back by a week, which works
    for any expression (an ``offset`` on each selector would clash with offsets the team wrote)."""
    return Call("last_over_time", (Offset(Range(signal(spec), FIVE_MIN, subquery=True), WEEK),))


def _expr(spec: CustomSpec) -> Expr:
    return binop(spec.op, Paren(signal(spec)), spec.threshold)


def definition(spec: CustomSpec) -> AlertDef:
    """The custom signal's alert, declared from the spec (its prose is the kind's shared ``custom`` macros)."""
    return AlertDef(alert_name(spec), spec.severity, str(spec.for_),
                    spec.summary or f"Custom signal {spec.name} is {OPS[spec.op]} its threshold.", runbook="custom")


def _slug(text: str, taken: set[str]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "case"
    out, n = slug, 2
    while out in taken:
        out, n = f"{slug}-{n}", n + 1
    taken.add(out)
    return out


def _written(spec: CustomSpec) -> list[Scenario]:
    taken: set[str] = set()
    out = []
    for t in spec.tests:
        series = tuple(Series(*parse_series(s.series), s.values) for s in t.series)
        out.append(Scenario(_slug(t.name, taken), t.name, series, (Check(t.at, t.fires),),
                            labels=dict(t.labels) if t.fires else {}, value=t.value, per_instance=False, alone=True))
    return out


def _derived(spec: CustomSpec, d: Derivable, f: Duration) -> list[Scenario]:
    fire, calm = _levels(spec.op, spec.threshold)
    labels, kept = dict(d.labels), dict(d.kept)
    end = d.window + f + MIN * 2

    def series(values: str) -> tuple[Series, ...]:
        return (Series(d.metric, labels, values),)

    if d.counter:
        def level(v: float) -> str:
            return counter((end, v / d.factor))
    else:
        def level(v: float) -> str:
            return gauge((end, v))
    out = [
        Scenario("fires", f"the signal held at {number(fire)}", series(level(fire)), verdict(f, end, True),
                 labels=kept, value=fire, per_instance=False, alone=True),
        Scenario("healthy", f"the signal held at {number(calm)}", series(level(calm)), verdict(f, end, False),
                 per_instance=False, alone=True),
    ]
    if d.counter:
        half = Duration(end.millis // 2 // STEP.millis * STEP.millis)
        out.append(Scenario("restart", f"held at {number(calm)} across a process restart (counter reset)",
                            series(counter((half, calm / d.factor), RESTART, (end - half, calm / d.factor),
                                           start=1_000_000)), verdict(f, end, False), per_instance=False, alone=True))
    else:
        spike = Duration(f.millis // 2 // STEP.millis * STEP.millis)
        if spike >= STEP:
            out.append(Scenario("spike", f"{spike} at {number(fire)}, shorter than the `for`",
                                series(gauge((MIN, calm), (spike, fire), (end - MIN - spike, calm))),
                                verdict(f, end, False), per_instance=False, alone=True))
    return out


def rules(c: Component) -> list[Rule]:
    spec: CustomSpec = c.spec  # type: ignore[assignment]
    derivable = analyse(spec.expr).derivable

    def scenarios(f: Duration) -> list[Scenario]:
        return _written(spec) if spec.tests else _derived(spec, derivable, f)  # type: ignore[arg-type]

    return c.alert(
        definition(spec), expr=_expr(spec), scenarios=scenarios,
        queries={"signal": signal(spec), "last_week": last_week(spec)},
        condition=condition(spec),
        description=(f"{spec.description.strip()} Now {_value(spec)}, {OPS[spec.op]} "
                     f"{_shown(spec, spec.threshold)}, for {{for}}.").strip(),
    )


# --------------------------------------------------------------------------- panels


def _steps(spec: CustomSpec):
    if spec.op in (">", ">="):
        return above(spec.threshold)
    if spec.op in ("<", "<="):
        return below(spec.threshold)
    return ()


def panels(c: Component, built: Built) -> ComponentPanels:
    spec: CustomSpec = c.spec  # type: ignore[assignment]
    alert = built.alerts[0].definition if built.alerts else definition(spec)
    unit = spec.unit
    detail = (Panel(
        title=f"{c.name}", unit=unit, thresholds=_steps(spec), alerts=(alert,),
        description=(f"{spec.description.strip()} The alert's own expression, not filtered by the job and instance "
                     "variables" + built.fires(alert, f"; {OPS[spec.op]} {_shown(spec, spec.threshold)} for {{for}} "
                                                      "fires {alert}") + "."),
        queries=(Query(signal(spec)),),
    ),)
    health = Panel(
        title=f"{c.name}", kind="stat", unit=unit, width=6, height=5, thresholds=_steps(spec), alerts=(alert,),
        description=(f"{spec.description.strip()} " + built.fires(
            alert, f"Fires {{alert}} when {OPS[spec.op]} {_shown(spec, spec.threshold)}.")).strip(),
        queries=(Query(signal(spec)),),
    )
    return ComponentPanels(health, detail, analyse(spec.expr).jobs)


KIND = Kind(
    key="custom",
    title="Custom signal",
    spec=CustomSpec,
    schema="custom",
    check=check,
    alerts=(),  # each custom component declares its own (see definition)
    rules=rules,
    panels=panels,
    concern=Concern("custom-signals", "Custom Signals",
                    "The team's own signals (business metrics) against their thresholds, as their alerts see them."),
    default_metrics={"micrometer": {}, "python": {}},
    app_metrics=False,
)
