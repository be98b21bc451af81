"""promtool unit tests from the scenarios each alert carries.

promtool evaluates every rule of a test file's rule files at every step of every
entry under ``tests:`` (0.1-0.2 ms per rule and step), so each component is
tested on its own: its tests load a copy of only its rules
(``components/<key>.yaml``, the same bytes as in the rule file, or of the few a
test file checks, ``components/<key>.<clock>.yaml``) and those of components
whose recordings it reads, so a story costs the same in a service of 5
components or 50. Within a component scenarios are packed into as few entries
as possible: each scenario gets its own ``instance`` label, and scenarios share
an entry unless they would see each other's series (a rule that aggregates the
instance away), check an alert at different times, or would make a rule load
more samples than promtool allows. Scenarios whose series go in exactly as
written (``alone``) get an entry each, except that stories told with the very
same series share one: promtool then replays them once, and each check holds on
the same data as it did apart.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from obsgen.model.promql import Call, Range, Selector, selector, selectors, walk
from obsgen.model.promql import render as promql
from obsgen.model.rules import STEP, Alert, Rule, Scenario
from obsgen.model.service import ComponentModel, RuleGroup
from obsgen.model.types import Duration
from obsgen.render import rules as rules_renderer
from obsgen.render.rules import annotations
from obsgen.render.templates import render as render_template
from obsgen.render.yamlout import dump


TEST_CLUSTER = "eu-west-1"
# promtool's query engine refuses a query that loads more than 10,000 samples (Prometheus allows 50 million):
# a rule with a window of hours over many test series would fail its test, not the rule. Entries stay below.
SAMPLE_BUDGET = 8000
TEMPLATED = ("description", "dashboard_url")  # the annotations that carry templates


class _Packing:
    """What the packer asks of every scenario many times, computed once per rule file: the metrics each alert
    selects, and the samples a scenario's series add to each rule's evaluation."""

    def __init__(self, alerts: list[Alert], step: Duration):
        self.alerts = alerts
        self.selected = [_selected(a) for a in alerts]
        self.siblings: dict[tuple[str | None, str], int] = {
            (a.labels.get("component"), a.name): i for i, a in enumerate(alerts)}
        self.stories = [{s.story for s in a.scenarios} for a in alerts]
        self.steps = [_window_steps(a, step) for a in alerts]
        """Per rule, the samples per matching series one evaluation loads: the samples' ``step`` counts, not the
        clock the rules are evaluated on."""
        self._loading: dict[str, list[int]] = {}  # per metric, the rules that load samples of it
        for i, (steps, names) in enumerate(zip(self.steps, self.selected)):
            for name in names if steps else ():
                self._loading.setdefault(name, []).append(i)
        self._loads: dict[int, dict[int, int]] = {}
        self._metrics: dict[int, set[str]] = {}
        self._inputs: dict[int, frozenset] = {}

    def load(self, scenario: Scenario) -> dict[int, int]:
        """``{rule: how many of the scenario's series it selects}``, for rules whose windows load samples."""
        if id(scenario) not in self._loads:
            out: dict[int, int] = {}
            for s in scenario.series:
                for i in self._loading.get(s.metric, ()):
                    out[i] = out.get(i, 0) + 1
            self._loads[id(scenario)] = out
        return self._loads[id(scenario)]

    def metrics(self, scenario: Scenario) -> set[str]:
        """The metric names of ``scenario``'s series, computed once: every entry it is offered to asks."""
        if id(scenario) not in self._metrics:
            self._metrics[id(scenario)] = {s.metric for s in scenario.series}
        return self._metrics[id(scenario)]

    def input(self, scenario: Scenario) -> frozenset:
        """The series of an ``alone`` scenario as a set, computed once: every entry it is offered to compares it."""
        if id(scenario) not in self._inputs:
            self._inputs[id(scenario)] = frozenset((s.metric, frozenset(s.labels.items()), s.values)
                                                   for s in scenario.series)
        return self._inputs[id(scenario)]

    def crosstalk(self, alert: Alert, scenario: Scenario, checked: set[str] | list[str]) -> bool:
        """Whether ``scenario``'s series would reach another alert of its component that the entry checks by name
        (a DB pool's exhaustion story has callers waiting, which the waiting-callers alert would rightly report,
        and a check lists every firing instance, whichever scenario it was written for): then they need separate
        entries. Scenarios telling a sibling's story are told to both on purpose. Only metrics an expression
        selects directly are compared."""
        component, own = alert.labels.get("component"), alert.name
        mine = self.metrics(scenario)
        for name in checked:
            if name == own:
                continue
            sibling = self.siblings.get((component, name))
            if sibling is None or (scenario.story and scenario.story in self.stories[sibling]):
                continue
            if not mine.isdisjoint(self.selected[sibling]):
                return True
        return False


@dataclass
class _Entry:
    clock: Duration
    checks: dict[str, tuple[Duration, ...]] = field(default_factory=dict)
    rules: set[int] = field(default_factory=set)
    shared_rules: set[int] = field(default_factory=set)
    cases: list[tuple[int, Alert, Scenario]] = field(default_factory=list)
    story: tuple[str, str] | None = None
    load: dict[int, int] = field(default_factory=dict)
    """Per rule, how many of the entry's series (each case's, counted again for every case) it selects."""
    over: bool = False
    """A rule already loads more samples than promtool allows (a single scenario can): nothing more joins."""
    reached: dict[str, bool] = field(default_factory=dict)
    """Per alert name asked about: whether the series of a case already here reach an alert of that name."""

    def accepts(self, rule: int, alert: Alert, scenario: Scenario, packing: _Packing) -> bool:
        times = tuple(c.at for c in scenario.checks)
        if self.checks.get(alert.name, times) != times:
            return False
        if scenario.alone or self.cases[0][2].alone:
            # Series exactly as written: only a story told with the very same series joins (the checks of both
            # then hold on the same data, as they did apart; a service-down story told for every component).
            return scenario.alone and packing.input(scenario) == packing.input(self.cases[0][2])
        if _story(alert, scenario) != self.story or rule in self.shared_rules:
            return False
        if not (scenario.per_instance or rule not in self.rules):
            return False
        steps = packing.steps
        if self.over or any(steps[i] * (self.load.get(i, 0) + n) > SAMPLE_BUDGET
                            for i, n in packing.load(scenario).items()):
            return False
        name = alert.name
        if name not in self.reached:
            self.reached[name] = any(packing.crosstalk(other, theirs, (name,)) for _, other, theirs in self.cases)
        return not (self.reached[name] or packing.crosstalk(alert, scenario, self.checks))

    def add(self, rule: int, alert: Alert, scenario: Scenario, packing: _Packing) -> None:
        self.story = _story(alert, scenario)
        self.checks[alert.name] = tuple(c.at for c in scenario.checks)
        self.rules.add(rule)
        if not scenario.per_instance:
            self.shared_rules.add(rule)
        self.cases.append((rule, alert, scenario))
        for name, reached in self.reached.items():
            self.reached[name] = reached or packing.crosstalk(alert, scenario, (name,))
        steps = packing.steps
        for i, n in packing.load(scenario).items():
            self.load[i] = self.load.get(i, 0) + n
            self.over = self.over or steps[i] * self.load[i] > SAMPLE_BUDGET


def _window_steps(alert: Alert, step: Duration) -> int:
    """Samples per matching series an evaluation of ``alert`` loads (every range and subquery window in steps,
    summed): an upper bound, as each window counts for every metric the alert selects."""
    return sum(n.window.millis // step.millis for n in walk(alert.expr)
               if isinstance(n, Range) and isinstance(n.window, Duration))


def _story(alert: Alert, scenario: Scenario) -> tuple[str, str] | None:
    return (alert.labels["component"], scenario.story) if scenario.story else None


def _selected(alert: Alert) -> set[str]:
    """The metrics (and recordings) an alert's expression selects."""
    return {s.metric for s in selectors(alert.expr)}


def _instance(alert: Alert, scenario: Scenario) -> str:
    if scenario.story:
        return f"{alert.labels['component']}/{scenario.story}"
    return f"{alert.name}/{alert.labels['component']}/{scenario.slug}"


def _absent(alerts: list[Alert]) -> dict[str, list[tuple[int, Selector]]]:
    """Per alert name, the rules of that name that fire on ``absent(<selector>)`` (HealthCheckSilent of two checks),
    with the selector."""
    out: dict[str, list[tuple[int, Selector]]] = {}
    for i, a in enumerate(alerts):
        if isinstance(a.expr, Call) and a.expr.fn == "absent" and isinstance(a.expr.args[0], Selector):
            out.setdefault(a.name, []).append((i, a.expr.args[0]))
    return out


def _present(entry: _Entry, absent: dict[str, list[tuple[int, Selector]]], step: Duration) -> list[dict]:
    """A rule firing on ``absent()`` fires in every entry that lacks its series, also in the stories of another rule
    of the same name, whose checks list every alert of that name: there its series is present throughout, so each
    story is about its own rule (as ComponentMetricsMissing's show the other components present)."""
    own = {rule for rule, _, _ in entry.cases}
    names = {alert.name for _, alert, _ in entry.cases}
    last = max((c.at for _, _, s in entry.cases for c in s.checks), default=step)
    steps = last.millis // step.millis + 1
    return [{"series": promql(selector(s.metric, {m.name: m.value for m in s.matchers if m.op == "="})),
             "values": f"1x{steps}"}
            for name in sorted(names) for rule, s in absent.get(name, ()) if rule not in own]


def _entry(entry: _Entry, step: Duration, cluster: dict[str, str],
           absent: dict[str, list[tuple[int, Selector]]]) -> dict:
    series, expected = [], {}
    for _, alert, scenario in entry.cases:
        instance = _instance(alert, scenario)
        for s in scenario.series:
            labels = dict(s.labels, **cluster) if scenario.alone else dict(s.labels, instance=instance, **cluster)
            item = {"series": promql(selector(s.metric, labels)), "values": s.values}
            if item not in series:  # a story's series, told once for all its alerts
                series.append(item)
        for check in scenario.checks:
            bucket = expected.setdefault((check.at, alert.name), [])
            if check.fires:
                labels = dict(scenario.labels, **cluster)
                if scenario.per_instance and not scenario.alone:
                    labels["instance"] = instance
                labels.update(alert.labels)
                firing = {
                    "exp_labels": dict(sorted(labels.items())),
                    "exp_annotations": {
                        key: render_template(text, labels, scenario.value) if key in TEMPLATED else text
                        for key, text in annotations(alert).items()},
                }
                if firing not in bucket:  # stories told with the same series expect the same alerts
                    bucket.append(firing)
    series += [item for item in _present(entry, absent, step) if item not in series]
    tests = [{"eval_time": str(at), "alertname": name, "exp_alerts": alerts}
             for (at, name), alerts in sorted(expected.items(), key=lambda kv: (kv[0][0], kv[0][1]))]
    return {"interval": str(step), "input_series": series, "alert_rule_test": tests}


COPY_HEADER = ("# Generated by obsgen: the rules of {component} alone (group {group} of {file}.yaml, the same bytes),\n"
               "# for its promtool tests ({tests}): promtool evaluates every rule a test file loads at\n"
               "# every step. Deploy {file}.yaml, not this; `obsgen build --check` fails when the two differ.\n")
FEW_HEADER = ("Generated by obsgen: the rules of {component} that its promtool tests ({tests}) check, {alerts}"
              "{recordings} (group {group} of {file}.yaml, the same bytes): promtool evaluates every rule a test file "
              "loads at every step, so each loads only what it checks. The {clock} in this file's name is the "
              "evaluation interval of the first test loading it, not a deployment setting. Deploy {file}.yaml, not "
              "this; `obsgen build --check` fails when the two differ.")


def _clocks(c: ComponentModel) -> list[Duration]:
    """The evaluation clocks of a component's stories, fastest first: a test file each."""
    return sorted({s.clock_on(c.test_step) for a in c.alerts for s in a.scenarios})


def _checked_rules(c: ComponentModel) -> dict[Duration, tuple[Rule, ...]]:
    """Per clock, the component's rules its test file there needs: every rule of an alert name it checks (a check
    lists every alert of its name) and the recordings they read, directly or through other recordings, in the
    group's order. Everything, should a rule read the ``ALERTS`` series of others."""
    recorders: dict[str, list[Rule]] = {}
    for r in c.recordings:
        recorders.setdefault(r.record, []).append(r)
    out: dict[Duration, tuple[Rule, ...]] = {}
    for clock in _clocks(c):
        names = {a.name for a in c.alerts if any(s.clock_on(c.test_step) == clock for s in a.scenarios)}
        todo: list[Rule] = [a for a in c.alerts if a.name in names]
        needed: set[int] = set()
        while todo:
            rule = todo.pop()
            if id(rule) not in needed:
                needed.add(id(rule))
                read = {s.metric for s in selectors(rule.expr)}
                if read & {"ALERTS", "ALERTS_FOR_STATE"}:
                    todo += c.rules
                todo += [r for name in read for r in recorders.get(name, ())]
        out[clock] = tuple(r for r in c.rules if id(r) in needed)
    return out


def _test_path(base: str, clock: Duration, fastest: Duration) -> str:
    """``<base>.test.yaml`` for the component's ``fastest`` clock (so every component with tests has that file),
    ``<base>.<clock>.test.yaml`` for each slower one."""
    return f"{base}{'' if clock == fastest else f'.{clock}'}.test.yaml"


def _names(file: str, components: Sequence[ComponentModel],
           partial: Sequence[Sequence[Duration]]) -> list[tuple[str, str]]:
    """Per component, its key (``components/<key>.yaml``; ``components/<key>.<clock>.yaml`` for the rules of one
    of its ``partial`` clocks) and the base of its test files' names.

    The key is ``<kind>.<name>`` (``:`` as ``-``, for Windows); the first component with tests has
    ``<file>.test.yaml``, the others ``<file>.<key>.test.yaml``. A name would make two components share a
    file when it differs from another only in case (macOS and Windows checkouts), in ``:`` against ``-``, or
    in a clock-like ending (``nexonApi`` tested on a 1m clock, and ``nexonApi.1m``): then the later of the two
    in the spec is named by its position among the components of its kind (``caches._2``), which no name can
    spell (names start with a letter or digit), and the earlier one keeps its files when a twin is added.
    """
    taken: set[str] = set()
    out: list[tuple[str, str]] = []
    first = next((i for i, c in enumerate(components) if c.alerts), None)
    for i, c in enumerate(components):
        position = sum(1 for other in components[: i + 1] if other.kind == c.kind)
        clocks = _clocks(c)
        for key in (f"{c.kind}.{c.name.replace(':', '-')}", f"{c.kind}._{position}"):
            base = file if i == first else f"{file}.{key}"
            paths = ([f"components/{key}.yaml"] + [f"components/{key}.{clock}.yaml" for clock in partial[i]]
                     + [_test_path(base, clock, clocks[0]) for clock in clocks])
            if not taken.intersection(p.casefold() for p in paths):
                break
        taken.update(p.casefold() for p in paths)
        out.append((key, base))
    return out


def _needs(reader: int, components: Sequence[ComponentModel]) -> list[int]:
    """The positions of the other components whose recordings the ``reader``-th reads, directly or through them."""
    recorded: dict[str, list[int]] = {}
    for i, c in enumerate(components):
        for name in dict.fromkeys(r.record for r in c.recordings):
            recorded.setdefault(name, []).append(i)
    needed: set[int] = set()
    todo = [reader]
    while todo:
        at = todo.pop()
        for r in components[at].rules:
            for s in selectors(r.expr):
                owners = recorded.get(s.metric, [])
                if at not in owners:  # a component reads its own recordings, evaluated before its alerts
                    todo += [i for i in owners if i not in needed]
                    needed.update(owners)
    needed.discard(reader)
    return sorted(needed)


def render_file(groups: Sequence[RuleGroup], components: Sequence[ComponentModel],
                cluster_label: str | None = None) -> dict[str, str]:
    """The promtool tests of one rule file (``prometheus/<file>.yaml``: its ``groups``, made of ``components``'
    rules), with the copies of rules they load: ``{path relative to prometheus/: text}``.

    Each component with alerts gets test files of its own (one per clock, see :func:`render`): the first such
    component's are ``<file>.test.yaml``, every other's ``<file>.<key>.test.yaml``. Each loads the rules of the
    components whose recordings it reads (``components/<key>.yaml``) and of its own only those its checks need
    (:func:`_checked_rules`): all of them (``components/<key>.yaml``, or the rule file itself when it holds this
    component alone), or a copy of the few (``components/<key>.<clock>.yaml``): a cache's stampede stories
    then evaluate its stampede alert alone, not the hit-ratio recordings of every tier at every step.
    """
    file = groups[0].file
    components = [c for c in components if c.rules]
    checked = [_checked_rules(c) for c in components]
    # Per component and clock, the clock naming the copy of the few rules its tests load (the first clock that
    # needs those very rules: clocks needing the same share a copy), or None for all of its rules.
    copy_of = [{clock: next(first for first, same in by_clock.items() if same == rules)
                if len(rules) < len(c.rules) else None for clock, rules in by_clock.items()}
               for c, by_clock in zip(components, checked)]
    names = _names(file, components, [sorted({k for k in named.values() if k}) for named in copy_of])
    alone = len(components) == 1
    source = [f"{file}.yaml" if alone else f"components/{key}.yaml" for key, _ in names]
    out: dict[str, str] = {}
    loaded: dict[int, str] = {}  # component → the first test file that loads all its rules (its copy's header names it)
    few: dict[str, tuple[ComponentModel, tuple[Rule, ...], list[str]]] = {}  # copy → its rules and the tests loading it
    for i, c in enumerate(components):
        needs = _needs(i, components)
        own = {clock: source[i] if first is None else f"components/{names[i][0]}.{first}.yaml"
               for clock, first in copy_of[i].items()}
        tests = render(list(c.alerts), {clock: [source[n] for n in needs] + [own[clock]] for clock in own},
                       c.test_step, cluster_label)
        for clock, text in tests.items():
            path = _test_path(names[i][1], clock, min(tests))
            out[path] = text
            for n in needs:
                loaded.setdefault(n, path)
            if copy_of[i][clock] is None:
                loaded.setdefault(i, path)
            else:
                few.setdefault(own[clock], (c, checked[i][clock], []))[2].append(path)
    for i, c in enumerate(components):
        if i in loaded and not alone:
            out[source[i]] = COPY_HEADER.format(component=f"{c.kind_title} {c.name}", group=_group(c, groups).name,
                                                file=file, tests=loaded[i]) + _rules(c, groups, c.rules)
    for path, (c, rules, tests) in few.items():
        alerts = [r for r in rules if isinstance(r, Alert)]
        header = FEW_HEADER.format(
            component=f"{c.kind_title} {c.name}", tests=", ".join(tests), group=_group(c, groups).name, file=file,
            alerts=", ".join(dict.fromkeys(a.name for a in alerts)),
            recordings=", with the recordings they read" if len(alerts) < len(rules) else "",
            clock=path.removesuffix(".yaml").rsplit(".", 1)[1])
        out[path] = textwrap.fill(header, 116, initial_indent="# ", subsequent_indent="# ", break_long_words=False,
                                  break_on_hyphens=False) + "\n" + _rules(c, groups, rules)
    return out


def _group(c: ComponentModel, groups: Sequence[RuleGroup]) -> RuleGroup:
    return next(g for g in groups if any(r is c.rules[0] for r in g.rules))


def _rules(c: ComponentModel, groups: Sequence[RuleGroup], rules: Sequence[Rule]) -> str:
    """``rules`` of component ``c`` in its group, as the rule file has them."""
    return rules_renderer.render([RuleGroup(_group(c, groups).name, tuple(rules))])


def render(alerts: list[Alert], rule_files: dict[Duration, list[str]], step: Duration = STEP,
           cluster_label: str | None = None) -> dict[Duration, str]:
    """Test files by evaluation interval: every scenario of ``alerts``, sampled every ``step``, on the rules of
    ``rule_files`` of its clock.

    Scenarios evaluate every ``step`` unless they ask for a slower ``clock``; each
    clock gets a file of its own (promtool has one evaluation interval per file).
    With ``cluster_label`` every input series comes from one cluster and every alert keeps it.
    """
    cluster = {cluster_label: TEST_CLUSTER} if cluster_label else {}
    by_clock: dict[Duration, list[_Entry]] = {}
    packing = _Packing(alerts, step)
    absent = _absent(alerts)
    for rule, alert in enumerate(alerts):
        for scenario in alert.scenarios:
            clock = scenario.clock_on(step)
            entries = by_clock.setdefault(clock, [])
            target = next((e for e in entries if e.accepts(rule, alert, scenario, packing)), None)
            if target is None:
                target = _Entry(clock)
                entries.append(target)
            target.add(rule, alert, scenario, packing)
    return {clock: dump({
        "rule_files": rule_files[clock],
        "evaluation_interval": str(clock),
        "tests": [_entry(e, step, cluster, absent) for e in entries],
    }) for clock, entries in sorted(by_clock.items())}
