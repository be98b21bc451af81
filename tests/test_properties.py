"""Property-based tests: random specs from the schema (tests/specgen.py).

Valid specs always build rules that pass ``promtool check rules`` and their own
generated ``promtool test rules``, dashboards that match Grafana's model with
valid PromQL, label values that come back out exactly, and runbooks without
template syntax from user text. Broken specs always exit 2 with every line
``file:line:col: path: message``, no traceback, nothing written. Nothing ever
raises an unexpected exception.

The default run is small (well under a minute). For thousands of specs:
``make fuzz`` (``HYPOTHESIS_PROFILE=thorough``); ``FUZZ_EXAMPLES=n`` scales it.
"""

from __future__ import annotations

import os
import re

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, event, given, settings, strategies as st

import specgen
from conftest import promtool
from obsgen import pipeline
from obsgen.cli import main
from obsgen.errors import SpecError
from obsgen.model.promql import quote
from obsgen.render.yamlout import dump
from obsgen.spec import parse
from outputs import check_outputs, selectors

pytestmark = pytest.mark.slow


def _without_local_constants() -> None:
    """Hypothesis also draws literals it mines from the project's imported modules (its "local constants", a
    private mechanism with no setting): the derandomized draw then depended on which obsgen modules earlier tests
    had imported, and on every literal of the code, so CI met specs no local run of this file met. Without them
    the draw depends on specgen and the schema alone, the same specs on every machine and in every run."""
    from hypothesis.internal.conjecture import providers

    empty = providers._local_constants.__class__()
    providers._get_local_constants = lambda: empty


_without_local_constants()

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
# (examples, specs per example) of the valid-spec test: each example is one promtool run over a batch.
BATCHES = (int(os.environ.get("FUZZ_EXAMPLES", 100)), 20) if THOROUGH else (3, 6)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 1000)) if THOROUGH else 40


def fuzz(examples: int = EXAMPLES, shrink: bool = True):
    """Settings of a property test. Without ``shrink`` a failure is reported as found: the batch test names
    the failing spec itself, and shrinking 20 specs through promtool (let alone explaining them under a
    tracer) takes hours. The default run (``make test``, CI) is derandomized: the same specs on every machine
    (:func:`_without_local_constants`); ``make fuzz`` draws new specs every run."""
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(max_examples=examples, deadline=None, phases=phases, database=None, derandomize=not THOROUGH,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): "
                     r"(?P<path>\(top level\)|[^ ]+|\S.*?): (?P<message>\S.*)$")


# --------------------------------------------------------------------------- valid specs

@fuzz(BATCHES[0], shrink=False)
@given(st.lists(specgen.valid_specs(), min_size=BATCHES[1], max_size=BATCHES[1]))
def test_random_valid_specs_build_rules_that_pass_promtool_and_dashboards_that_validate(tmp_path_factory, batch):
    out = tmp_path_factory.mktemp("batch")
    rule_files, test_files, owner = [], [], []  # owner: the batch index of each test file's spec
    for i, data in enumerate(batch):
        spec = parse(specgen.dump(data), f"{i}.yaml")
        files = {o.path: o.content for o in pipeline.render(spec)}
        event(f"components in a spec: {min(len(spec.components), 4)}{'+' if len(spec.components) >= 4 else ''}")
        for c in spec.components:
            event(f"kind: {c.kind.key}")
        check_outputs(spec, files)
        for path, text in files.items():
            target = out / str(i) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, "utf-8")
        prom = out / str(i) / spec.service.name / "prometheus"  # rules.yaml, and slo.yaml for SLOs
        rule_files += sorted(str(f) for f in prom.glob("*.yaml") if not f.name.endswith(".test.yaml"))
        mine = sorted(str(f) for f in prom.glob("*.test.yaml"))
        test_files += mine
        owner += [i] * len(mine)
    if not rule_files:  # specs without components have no rules to check
        return
    lint = promtool("check", "rules", "--lint=all", "--lint-fatal", *rule_files, cwd=out)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # Random specs have `for`s of hours: a batch can take minutes of promtool (evaluations × rules).
    tests = promtool("test", "rules", *test_files, cwd=out, timeout=60 * len(batch))
    if tests.returncode != 0:  # name the spec that failed, with promtool's complaint about it
        for i, test_file in zip(owner, test_files):
            one = promtool("test", "rules", test_file, cwd=out, timeout=600)
            assert one.returncode == 0, specgen.dump(batch[i]) + one.stdout[-4000:] + one.stderr[-2000:]


# --------------------------------------------------------------------------- invalid specs

def assert_located(stderr: str, file: str) -> None:
    lines = stderr.rstrip("\n").split("\n")
    assert lines[-1].startswith("obsgen: ") and "problem" in lines[-1], stderr
    for line in lines[:-1]:
        m = LOCATED.match(line)
        assert m and m["file"] == file, line


@fuzz()
@given(specgen.mutated_specs())
def test_broken_specs_exit_2_with_every_line_located_and_write_nothing(tmp_path_factory, case):
    how, text = case
    work = tmp_path_factory.mktemp("broken")
    (work / "spec.yaml").write_text(text, "utf-8")
    out = work / "out"
    result = CliRunner().invoke(main, ["build", str(work / "spec.yaml"), "--out", str(out)])
    assert result.exit_code == 2, (how, result.stderr, text)
    assert "Traceback" not in result.output + result.stderr and "internal error" not in result.stderr
    assert_located(result.stderr, str(work / "spec.yaml"))
    assert not out.exists()


@fuzz()
@given(specgen.garbled_specs())
def test_garbled_specs_are_either_valid_or_refused_with_located_problems(text):
    try:
        spec = parse(text, "g.yaml")
    except SpecError as exc:
        assert exc.problems
        lines = text.count("\n") + 2
        for p in exc.problems:
            assert 1 <= p.line <= lines and p.column >= 1 and p.message, p
            assert "\n" not in str(p)
        return
    pipeline.render(spec)


# --------------------------------------------------------------------------- escaping primitives

TEXT = st.text(st.characters(exclude_categories=("Cs",)))


@fuzz(5000 if THOROUGH else 300)
@given(TEXT)
def test_any_label_value_round_trips_through_a_promql_string(value):
    quoted = quote(value)
    ((_, matchers),) = selectors(f"up{{a={quoted}}}")
    assert matchers == [("a", "Equal", value)]
    assert "$" not in quoted and "[[" not in quoted  # nothing for Grafana to replace


@fuzz(5000 if THOROUGH else 300)
@given(st.dictionaries(TEXT, st.one_of(TEXT, st.lists(TEXT, max_size=3))))
def test_any_string_round_trips_through_the_yaml_writer(data):
    assert yaml.safe_load(dump(data)) == data


@pytest.mark.parametrize("value", specgen.HOSTILE)
def test_hostile_samples_round_trip_through_promql(value):
    ((_, matchers),) = selectors(f"up{{a={quote(value)}}}")
    assert matchers == [("a", "Equal", value)]
