"""The rule groups as a prometheus-operator ``PrometheusRule`` (``monitoring.coreos.com/v1``).

``spec`` is exactly the plain rule file's data (:func:`obsgen.render.rules.data`),
so the two outputs can never disagree. prometheus-operator copies the groups
into the rule files it gives Prometheus (or Thanos Ruler) unchanged, alert
templates (``{{ $labels.instance }}``) included.
"""

from __future__ import annotations

from obsgen.model.service import ServiceModel
from obsgen.model.types import Service
from obsgen.render import rules
from obsgen.render.kubernetes import OUT_DIR, metadata
from obsgen.render.yamlout import dump

FILE = f"{OUT_DIR}/prometheusrule.yaml"


def manifest(model: ServiceModel) -> dict:
    service: Service = model.service
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": metadata(service, service.name), "spec": rules.data(model.groups)}


def render(model: ServiceModel) -> dict[str, str]:
    return {f"{model.service.name}/{FILE}": dump(manifest(model))}
