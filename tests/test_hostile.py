"""Hostile but allowed input (tests/specs/hostile/) builds output that means exactly what the spec says,
and no spec or manifest can make obsgen write or delete outside its output directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT, build_into, promtool, rendered, run_unit_tests
from obsgen import pipeline, writer
from obsgen.cli import main
from obsgen.errors import UsageError
from obsgen.render import runbooks
from obsgen.spec import load
from obsgen.spec.source import MAX_BYTES
from obsgen.writer import Output
from outputs import check_outputs

HOSTILE = sorted((ROOT / "tests" / "specs" / "hostile").glob("*.yaml"))


def label_values(data: object) -> set[str]:
    """Every value of every label-matcher mapping the spec writes (selectors, metric matchers, tier labels)."""
    out: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("selector", "sentinel_selector", "matchers", "labels") and isinstance(value, dict):
                out.update(value.values())
            else:
                out |= label_values(value)
    elif isinstance(data, list):
        for value in data:
            out |= label_values(value)
    return out


def _build(path: Path, out: Path):
    spec = load(path)
    build_into(out, spec)
    files = {o.path: (out / o.path).read_text("utf-8") for o in pipeline.render(spec)}
    return spec, yaml.safe_load(path.read_text("utf-8")), files, out / spec.service.name


@pytest.fixture(scope="module", params=HOSTILE, ids=lambda p: p.stem)
def built(request, tmp_path_factory):
    return _build(request.param, tmp_path_factory.mktemp(request.param.stem))


@pytest.fixture(scope="module")
def quoting(tmp_path_factory):
    return _build(ROOT / "tests/specs/hostile/label-values.yaml", tmp_path_factory.mktemp("quoting"))


@pytest.fixture(scope="module")
def free_text(tmp_path_factory):
    return _build(ROOT / "tests/specs/hostile/free-text.yaml", tmp_path_factory.mktemp("free-text"))


@pytest.mark.promtool
def test_rules_pass_promtool_lint_and_their_own_tests(built):
    _, _, _, service = built
    prom = service / "prometheus"
    for result in (promtool("check", "rules", "--lint=all", "--lint-fatal", "rules.yaml", cwd=prom), run_unit_tests(prom)):
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_label_value_comes_back_out_of_the_promql_exactly(built):
    spec, data, files, _ = built
    found = check_outputs(spec, files)  # also: dashboards valid, nothing for Grafana to replace, no template syntax
    assert label_values(data) <= found, label_values(data) - found


def test_grafana_variable_syntax_in_a_label_value_is_escaped_not_replaced(quoting):
    spec, data, files, _ = quoting
    overview = files["quoting/dashboards/cache-performance.json"]
    assert "$job ${instance}" not in overview and r"\\x24job \\x24{instance} \\x5b[job]]" in overview
    rules = files["quoting/prometheus/rules.yaml"]
    assert 'job="shop \\"blue\\" \\\\ green"' in rules
    assert 'rate({__name__="on", job=' in rules  # a metric named like a PromQL keyword


def test_free_text_is_shown_as_written_never_interpreted(free_text):
    spec, data, files, _ = free_text
    index = files["free-text/runbooks/README.md"]
    assert runbooks.md(data["service"]["description"]).strip() in index
    for path, text in files.items():
        if path.endswith(".md"):
            assert "<b>" not in text and "49" not in text and "jinja{" not in text
            assert runbooks.merge(text, text) == text  # a description with a marker in it cannot confuse merging
    rules = yaml.safe_load(files["free-text/prometheus/rules.yaml"])
    urls = {r["annotations"]["runbook_url"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert urls and all(u.startswith("https://wiki.example.com/runbooks/?team=sre&q=a%20b#") for u in urls)
    titles = [p["title"] for d in (json.loads(t) for p_, t in files.items() if p_.endswith(".json"))
              for p in d["panels"]]
    assert any("{{ .Labels.instance }} *bold*" in t for t in titles)  # Grafana titles are plain text


# --------------------------------------------------------------------------- where obsgen writes

@pytest.mark.parametrize("path", ["../evil/rules.yaml", "/etc/obsgen", "svc\\..\\..\\x", "svc/../../x", "svc/./x",
                                  "svc//x", "svc/x. ", "con/rules.yaml", "svc/NUL.txt", "svc/lpt1", "c:/x"])
def test_writer_refuses_paths_that_leave_the_output_directory_or_do_not_port(tmp_path, path):
    with pytest.raises(UsageError, match="refusing to write"):
        writer.plan(tmp_path / "out", {"svc": [Output(path, "x")]})
    assert not (tmp_path / "evil").exists() and not (tmp_path / "x").exists()


def test_writer_refuses_two_files_that_differ_only_in_case(tmp_path):
    with pytest.raises(UsageError, match="case-insensitive"):
        writer.plan(tmp_path, {"svc": [Output("svc/runbooks/README.md", "a"), Output("svc/runbooks/readme.md", "b")]})


def test_writer_refuses_to_follow_a_symbolic_link_out_of_the_output_directory(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "svc").symlink_to(elsewhere)
    with pytest.raises(UsageError, match="outside"):
        writer.plan(out, {"svc": [Output("svc/prometheus/rules.yaml", "x")]})
    assert list(elsewhere.iterdir()) == []


def test_a_manifest_cannot_make_obsgen_delete_outside_the_output_directory(tmp_path):
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "svc").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "file").write_text("keep me too")
    (out / "svc" / "link").symlink_to(tmp_path / "outside")
    files = ["../victim.txt", "svc/../../victim.txt", str(victim), "svc/link/file"]
    (out / "svc" / writer.MANIFEST).write_text(json.dumps({"generator": "obsgen", "files": files}))
    p = writer.plan(out, {"svc": [Output("svc/prometheus/rules.yaml", "groups: []\n")]})
    assert p.orphaned == []
    writer.apply(p)
    assert victim.read_text() == "keep me" and (tmp_path / "outside" / "file").read_text() == "keep me too"


def test_a_service_name_cannot_name_a_path(tmp_path):
    spec = tmp_path / "s.yaml"
    for name in ("../../etc", "/etc", "a/b", "..", ".", "CON", "con", "Shop"):
        spec.write_text(f"apiVersion: obsgen/v1\nservice: {{name: {json.dumps(name)}, team: web}}\n")
        result = CliRunner().invoke(main, ["build", str(spec), "--out", str(tmp_path / "out")])
        assert result.exit_code == 2 and "service.name: expected a service name" in result.stderr, name
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- whole runs

def test_validate_reports_every_problem_of_every_file_in_file_order(monkeypatch):
    monkeypatch.chdir(ROOT / "tests" / "specs" / "invalid")
    files = ["selector-clashes.yaml", "all-at-once.yaml", "nan-threshold.yaml"]
    result = CliRunner().invoke(main, ["validate", *files])
    assert result.exit_code == 2
    *lines, summary = result.stderr.rstrip("\n").split("\n")
    expected = [line for f in sorted(files) for line in Path(f).with_suffix(".err").read_text().splitlines()]
    assert lines == expected and summary == f"obsgen: {len(expected)} problems found"


def test_a_spec_over_the_size_limit_is_refused_before_parsing(tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text("apiVersion: obsgen/v1\nservice: {name: shop, team: web}\n" + "# padding\n" * (MAX_BYTES // 10))
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 2
    assert f"big.yaml:1:1: (top level): expected a spec of at most {MAX_BYTES} bytes, found" in result.stderr


def test_yaml_merge_keys_may_override_but_plain_duplicates_may_not(tmp_path):
    spec = tmp_path / "merge.yaml"
    spec.write_text("apiVersion: obsgen/v1\nservice: {name: shop, team: web}\nexecutors:\n"
                    "  - &pool {name: a, queue_capacity: 10, queue_full_ratio: 0.5}\n"
                    "  - {<<: *pool, name: b, queue_capacity: 20}\n")
    loaded = load(spec)
    assert [(c.name, c.spec.queue_capacity, c.spec.queue_full_ratio) for c in loaded.components] == [
        ("a", 10, 0.5), ("b", 20, 0.5)]
    spec.write_text("apiVersion: obsgen/v1\nservice: {name: shop, team: web}\nexecutors:\n"
                    "  - {name: a, queue_capacity: 10, queue_capacity: 20}\n")
    result = CliRunner().invoke(main, ["validate", str(spec)])
    assert result.exit_code == 2 and "executors[0].queue_capacity: duplicate key `queue_capacity`" in result.stderr


def replace_output(o: Output) -> Output:
    return Output(o.path, o.content + "\n# changed\n" if o.path.endswith(".yaml") else o.content, o.merge)


OWN_MATCHERS = """
apiVersion: obsgen/v1
service: {name: d0, team: t}
backpressure:
  - name: "no"
    max_concurrent: 13
    metrics:
      available: {name: permits_free, value: "- "}
      rejected: {name: "shed:total", label: pool, value: x}
"""


def test_a_component_whose_every_metric_selects_by_its_own_labels_keeps_its_name_exactly(spec_from):
    """When every metric a component reads names its own matchers, its name picks no series: it reaches the
    alerts through label_replace, and must come out there exactly as written (the fuzzer found the case)."""
    spec = spec_from(OWN_MATCHERS)
    assert "no" in check_outputs(spec, rendered(spec))


PROBED = """
apiVersion: obsgen/v1
service: {name: o, team: r}
health_checks:
  - name: "0z"
    label: check
    probe: {target: "http://x/health", selector: {job: blackbox}}
"""


def test_a_probed_check_whose_series_do_not_carry_its_name_keeps_it_exactly_in_its_alerts(spec_from):
    """The blackbox exporter's series do not name the check: the rules set it as their own label, and there it
    must come out exactly as written (the fuzzer's round-trip check wanted it in a selector)."""
    spec = spec_from(PROBED)
    files = rendered(spec)
    check_outputs(spec, files)
    alerts = [r for g in yaml.safe_load(files["o/prometheus/rules.yaml"])["groups"] for r in g["rules"]
              if r.get("labels", {}).get("component") == "0z" and "alert" in r]
    assert alerts and {r["labels"]["check"] for r in alerts} == {"0z"}
