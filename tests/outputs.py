"""Checks every build must pass, shared by the hostile corpus and the property tests.

Dashboards match Grafana's model and their queries are PromQL with nothing for
Grafana to replace but the dashboard's own variables; every label value that
picks a component's series comes back out of the PromQL exactly as the spec
wrote it; no annotation or runbook carries template syntax obsgen did not write.
"""

from __future__ import annotations

import json
import re

import jsonschema
import promql_parser
import yaml

from obsgen.spec import Spec
from test_dashboards import ALLOWED, SCHEMA, schema_errors


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Every vector selector of a PromQL expression: (metric, [(label, op, value)])."""
    out = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            out.append((node.name, [(m.name, str(m.op).rsplit(".", 1)[-1], m.value) for m in node.matchers.matchers]))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return out


def relabelled(expr: str) -> list[str]:
    """The values ``label_replace(..., label, value, "", "")`` writes into a label, as the alert shows them (``$$``
    is a ``$``): a component whose every metric selects by labels of its own keeps its name this way."""
    out = []

    def visit(node):
        if isinstance(node, promql_parser.Call) and node.func.name == "label_replace" and node.args[4].val == "":
            out.append(node.args[2].val.replace("$$", "$"))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return out


def grafana_expr(expr: str) -> str:
    """A panel query as Prometheus gets it once Grafana has put in its variables."""
    return expr.replace("$__rate_interval", "5m")


def dashboard_errors(d: dict) -> list[str]:
    """Errors against Grafana's dashboard schema: the dashboard, then each panel against its own branch."""
    out = schema_errors({**d, "panels": []})
    for p in d["panels"]:
        branch = "RowPanel" if p["type"] == "row" else "Panel"
        sub = {"$ref": f"#/definitions/{branch}", "definitions": SCHEMA["definitions"]}
        out += [f"{p['title']}: {e.json_path}: {e.message}" for e in jsonschema.Draft7Validator(sub).iter_errors(p)
                if not any(re.search(pat, "panels/0/" + "/".join(map(str, e.absolute_path))) and e.validator == kw
                           for pat, kw, _ in ALLOWED)]
    return out


def re2_alternatives(regex: str) -> list[str]:
    """The literal alternatives of a regex obsgen built with regex_quote and ``|``."""
    out, cur, escaped = [], "", False
    for ch in regex:
        if escaped:
            cur, escaped = cur + ch, False
        elif ch == "\\":
            escaped = True
        elif ch == "|":
            out, cur = out + [cur], ""
        else:
            cur += ch
    return out + [cur]


# A template action obsgen writes itself (rule YAML quoted in runbooks may wrap it over two lines).
_TEMPLATE_ACTION = re.compile(r"\{\{(?!\s+\$labels\.\w+(\s+\|\s+urlquery)?\s+\}\}"
                              r"|\s+\$value(\s+\|\s+humanize(Percentage|Duration)?)?\s+\}\}"
                              r"|\s+if \$labels\.\w+\s+\}\}|\s+else\s+\}\}|\s+end\s+\}\})")


def check_outputs(spec: Spec, files: dict[str, str]) -> set[str]:
    """Everything but promtool: dashboards, PromQL, label values round trip, runbooks, YAML.

    Returns the label values the outputs match exactly (``=``), as PromQL reads them.
    """
    found: set[str] = set()
    rule_files = [text for path, text in files.items() if path.startswith(f"{spec.service.name}/prometheus/")
                  and not path.endswith(".test.yaml")]  # rules.yaml, slo.yaml: only those with rules
    for group in [g for text in rule_files for g in yaml.safe_load(text)["groups"]]:
        for rule in group["rules"]:
            for _, ms in selectors(rule["expr"]):
                found.update(v for _, op, v in ms if op == "Equal")
            found.update(relabelled(rule["expr"]))
            for text in rule.get("annotations", {}).values():
                assert _TEMPLATE_ACTION.findall(text) == [], text  # only the template actions obsgen writes
    for path, text in files.items():
        if path.endswith(".json"):
            d = json.loads(text)
            assert dashboard_errors(d) == [], path
            for p in d["panels"]:
                for t in p.get("targets", []):
                    for _, ms in selectors(grafana_expr(t["expr"])):
                        found.update(v for _, op, v in ms if op == "Equal")
                    # nothing from the spec for Grafana to replace: only the dashboard's own variables
                    assert "$" not in re.sub(r"\$(cluster|job|instance|__rate_interval)\b", "", t["expr"]), t["expr"]
            for var in d["templating"]["list"]:
                if var["name"] == "job" and "{" in var["query"]:
                    ((_, ms),) = selectors(var["query"].removeprefix("label_values(").rsplit(",", 1)[0])
                    found.update(*(re2_alternatives(v) for k, _, v in ms if k == "job"))  # not the cluster
        elif path.endswith(".md"):
            assert _TEMPLATE_ACTION.findall(text) == [], path  # no template syntax from user text
        elif path.endswith(".yaml"):
            yaml.safe_load(text)
    # every label value that picks a component's series comes out exactly as the spec wrote it (in a selector, or
    # through label_replace when every metric of the component selects by labels of its own); a probed health
    # check's series are the blackbox exporter's, which its name picks none of (its rules carry it as a label)
    wanted = {v for c in spec.components for k, v in c.base_labels.items()
              if not (getattr(c.spec, "probe", None) and k in c.identity)}
    assert wanted <= found, wanted - found
    return found
