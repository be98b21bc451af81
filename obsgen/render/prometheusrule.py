"""The rule groups as a prometheus-operator ``PrometheusRule`` (``monitoring.coreos.com/v1``).

``spec`` is exactly the plain rule file's data (:func:`obsgen.render.rules.data`),
so the two outputs can never disagree. prometheus-operator copies the groups
into the rule files it gives Prometheus (or Thanos Ruler) unchanged, alert
templates (``{{ $labels.instance }}``) included.
"""

from __future__ import annotations

from obsgen.model.types import Service
from obsgen.render import rules
from obsgen.render.kubernetes import OUT_DIR, metadata
from obsgen.render.yamlout import dump

FILE = f"{OUT_DIR}/prometheusrule.yaml"


def manifest(service: Service, groups: list[rules.RuleGroup]) -> dict:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": metadata(service, service.name), "spec": rules.data(groups)}


def render(service: Service, groups: list[rules.RuleGroup]) -> dict[str, str]:
    return {f"{service.name}/{FILE}": dump(manifest(service, groups))}
