"""Outputs for the platforms people deploy to: the prometheus-operator PrometheusRule, Grafana's dashboards
provider and grafana-operator GrafanaDashboards, each checked against the real CRD schema
(tests/fixtures/crds/, source and version in its README)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import ROOT, SPECS, VALID_SPECS, all_rule_groups, load_spec, promtool, rendered
from obsgen.render.kubernetes import dns_label
from obsgen.spec import parse

CRDS = ROOT / "tests" / "fixtures" / "crds"
PROMETHEUS_RULE_CRD = CRDS / "monitoring.coreos.com_prometheusrules.yaml"
GRAFANA_DASHBOARD_CRD = CRDS / "grafana.integreatly.org_grafanadashboards.yaml"
FLEET = ROOT / "tests" / "specs" / "valid" / "fleet-multicluster.yaml"

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                       r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")


outputs = rendered


@pytest.fixture(scope="module", params=SPECS + VALID_SPECS, ids=lambda p: p.stem)
def built(request) -> tuple[object, dict[str, str]]:
    spec = load_spec(request.param)
    return spec, outputs(spec)


@pytest.fixture(scope="module")
def fleet():
    spec = load_spec(FLEET)
    return spec, outputs(spec)


# --------------------------------------------------------------------------- CRD validation

def crd(path: Path) -> tuple[str, str, dict]:
    """apiVersion, kind and openAPIV3Schema of the CRD's storage version."""
    doc = yaml.safe_load(path.read_text("utf-8"))
    (version,) = [v for v in doc["spec"]["versions"] if v["storage"]]
    return f"{doc['spec']['group']}/{version['name']}", doc["spec"]["names"]["kind"], version["schema"]["openAPIV3Schema"]


def pruned_fields(value, schema: dict, path: str = "") -> list[str]:
    """Fields a structural schema does not declare: the API server would drop them silently."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is None:
            extra = schema.get("additionalProperties")
            return [p for k, v in value.items() for p in pruned_fields(v, extra, f"{path}.{k}")] \
                if isinstance(extra, dict) else []
        return [f"{path}.{k}" for k in value if k not in props] + \
            [p for k, v in value.items() if k in props for p in pruned_fields(v, props[k], f"{path}.{k}")]
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [p for i, v in enumerate(value) for p in pruned_fields(v, schema["items"], f"{path}[{i}]")]
    return []


def metadata_errors(meta: dict) -> list[str]:
    """What the API server checks of ObjectMeta (the CRD schema leaves metadata to it)."""
    out = []
    if not DNS_LABEL.match(meta["name"]) or len(meta["name"]) > 63:
        out.append(f"metadata.name {meta['name']!r} is not a DNS-1123 label")
    if "namespace" in meta and (not DNS_LABEL.match(meta["namespace"]) or len(meta["namespace"]) > 63):
        out.append(f"metadata.namespace {meta['namespace']!r} is not a DNS-1123 label")
    for key, value in meta.get("labels", {}).items():
        if not LABEL_KEY.match(key) or not isinstance(value, str) or not LABEL_VALUE.match(value):
            out.append(f"metadata.labels: {key}={value!r} is not a valid label")
    return out


def crd_errors(obj: dict, crd_file: Path) -> list[str]:
    api_version, kind, schema = crd(crd_file)
    out = [] if (obj.get("apiVersion"), obj.get("kind")) == (api_version, kind) else [f"not a {api_version} {kind}"]
    # OpenAPI v3 schemas as CRDs use them mean the same in JSON Schema draft 7 (x-kubernetes-* are annotations).
    out += [f"{e.json_path}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(obj)]
    out += [f"{p}: unknown field (pruned by the API server)" for p in pruned_fields(obj, schema)]
    return out + metadata_errors(obj["metadata"])


def test_the_crd_check_catches_what_the_api_server_would_reject_or_drop():
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "Bad_Name"},
            "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "for": "five minutes", "expr": "up",
                                                         "severity": "critical"}]}]}}
    errors = crd_errors(rule, PROMETHEUS_RULE_CRD)
    assert any("for" in e and "does not match" in e for e in errors), errors
    assert any(e.startswith(".spec.groups[0].rules[0].severity: unknown field") for e in errors), errors
    assert any("metadata.name" in e for e in errors), errors
    assert len(errors) == 3


# --------------------------------------------------------------------------- PrometheusRule

def prometheus_rule(files: dict[str, str], service: str) -> dict:
    return yaml.safe_load(files[f"{service}/kubernetes/prometheusrule.yaml"])


def test_prometheusrule_matches_the_prometheus_operator_crd(built):
    spec, files = built
    obj = prometheus_rule(files, spec.service.name)
    assert crd_errors(obj, PROMETHEUS_RULE_CRD) == []
    names = [g["name"] for g in obj["spec"]["groups"]]  # x-kubernetes-list-type: map keyed by name
    assert len(names) == len(set(names))


def test_prometheusrule_holds_exactly_the_groups_of_the_plain_rule_file(built):
    spec, files = built
    plain = all_rule_groups(files, spec.service.name)
    assert prometheus_rule(files, spec.service.name)["spec"] == plain


def test_promtool_accepts_the_spec_of_the_prometheusrule(built, tmp_path):
    spec, files = built
    (tmp_path / "from-crd.yaml").write_text(yaml.safe_dump(prometheus_rule(files, spec.service.name)["spec"]))
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", "from-crd.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_templates_reach_prometheus_operator_verbatim(maple):
    files = outputs(maple)
    text = files["maple-expectation/kubernetes/prometheusrule.yaml"]
    alerts = {r["alert"]: r for g in yaml.safe_load(text)["spec"]["groups"] for r in g["rules"] if "alert" in r}
    # prometheus-operator copies annotations into Prometheus's rule file as they are: no escaping, no Helm syntax.
    assert alerts["RedisDown"]["annotations"]["description"].endswith(
        "Unreachable server: {{ $labels.instance }} (none named when the exporter answers but no server reports "
        "itself master).")
    assert "{{ $value | humanizePercentage }}" in alerts["RedisMemoryHigh"]["annotations"]["description"]
    assert '{{ "{{" }}' not in text and "{{`" not in text


def test_prometheusrule_metadata_comes_from_the_spec(maple, fleet):
    meta = prometheus_rule(outputs(maple), "maple-expectation")["metadata"]
    assert meta == {"name": "maple-expectation", "labels": {"app.kubernetes.io/managed-by": "obsgen",
                                                            "app.kubernetes.io/name": "maple-expectation"}}
    spec, files = fleet
    meta = prometheus_rule(files, "checkout")["metadata"]
    assert meta["name"] == "checkout" and meta["namespace"] == "monitoring"
    assert meta["labels"]["release"] == "prometheus"  # kube-prometheus-stack's default ruleSelector


def test_object_names_are_dns_labels_whatever_the_service_is_called(spec_from):
    assert dns_label("maple-expectation") == "maple-expectation"
    assert dns_label("shop-") == "shop"
    assert dns_label("Shop_Cache.L1") == "shop-cache-l1"
    assert len(dns_label("a" * 80)) == 63
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: shop-, team: web}\nexecutors: [{name: p, queue_capacity: 5}]\n")
    obj = prometheus_rule(outputs(spec), "shop-")
    assert crd_errors(obj, PROMETHEUS_RULE_CRD) == [] and obj["metadata"]["name"] == "shop"


# --------------------------------------------------------------------------- Grafana provisioning

def test_dashboards_provider_defaults_to_the_team_folder_and_a_per_service_path(maple):
    files = outputs(maple)
    provider = yaml.safe_load(files["maple-expectation/grafana/provisioning/dashboards.yaml"])
    assert provider == {"apiVersion": 1, "providers": [{
        "name": "maple-expectation", "orgId": 1, "type": "file", "folder": "sre", "disableDeletion": False,
        "allowUiUpdates": False, "updateIntervalSeconds": 30,
        "options": {"path": "/var/lib/grafana/dashboards/maple-expectation", "foldersFromFilesStructure": False}}]}


def test_dashboards_provider_takes_folder_and_path_from_the_spec(fleet):
    spec, files = fleet
    (p,) = yaml.safe_load(files["checkout/grafana/provisioning/dashboards.yaml"])["providers"]
    assert (p["name"], p["folder"], p["options"]["path"]) == ("checkout", "Payments", "/grafana-dashboards/checkout")


def test_grafana_operator_manifests_only_when_enabled(maple, fleet):
    assert not [p for p in outputs(maple) if "grafanadashboard" in p]
    spec, files = fleet
    boards = sorted(Path(p).stem for p in files if p.startswith("checkout/dashboards/"))
    assert sorted(Path(p).stem.removeprefix("grafanadashboard-") for p in files
                  if p.startswith("checkout/kubernetes/grafanadashboard-")) == boards


def test_grafana_dashboards_match_the_grafana_operator_crd_and_embed_the_dashboard_json(fleet):
    spec, files = fleet
    manifests = {p: yaml.safe_load(t) for p, t in files.items() if "/grafanadashboard-" in p}
    assert manifests
    for path, obj in manifests.items():
        assert crd_errors(obj, GRAFANA_DASHBOARD_CRD) == [], path
        slug = Path(path).stem.removeprefix("grafanadashboard-")
        board = files[f"checkout/dashboards/{slug}.json"]
        assert obj["spec"]["json"] == board  # the same bytes Grafana's file provider reads
        assert obj["metadata"]["name"] == json.loads(board)["uid"]
        assert obj["metadata"]["namespace"] == "monitoring"
        assert obj["spec"]["instanceSelector"] == {"matchLabels": {"dashboards": "shared-grafana"}}
        # the CRD's CEL rules: folder excludes folderUID / folderRef
        assert obj["spec"]["folder"] == "Payments" and not {"folderUID", "folderRef"} & set(obj["spec"])


def test_grafana_operator_selector_defaults_to_the_operators_documented_label(spec_from):
    spec = spec_from("apiVersion: obsgen/v1\nservice: {name: shop, team: web, grafana: {operator: {enabled: true}}}\n"
                     "executors: [{name: p, queue_capacity: 5}]\n")
    obj = yaml.safe_load(outputs(spec)["shop/kubernetes/grafanadashboard-thread-pool.yaml"])
    assert obj["spec"]["instanceSelector"] == {"matchLabels": {"dashboards": "grafana"}}
    assert obj["spec"]["folder"] == "web" and "namespace" not in obj["metadata"]
    assert crd_errors(obj, GRAFANA_DASHBOARD_CRD) == []


def test_spec_keys_of_the_outputs_are_checked_like_any_other(spec_from):
    from obsgen.errors import SpecError

    def problems(service_extra: str) -> list[str]:
        with pytest.raises(SpecError) as err:
            parse(f"apiVersion: obsgen/v1\nservice: {{name: shop, team: web, {service_extra}}}\n", "x.yaml")
        return [p.message for p in err.value.problems]

    assert "Kubernetes label value" in problems("kubernetes: {labels: {release: 'kube prometheus'}}")[0]
    assert "Kubernetes namespace" in problems("kubernetes: {namespace: Monitoring}")[0]
    assert "absolute path" in problems("grafana: {dashboards_path: dashboards}")[0]
    assert "other than those obsgen sets" in problems("cluster_label: instance")[0]
    assert "unknown key `recievers`" in problems("alertmanager: {recievers: {critical: x}}")[0]
