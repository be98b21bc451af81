"""Object metadata shared by the Kubernetes manifests obsgen writes (PrometheusRule, GrafanaDashboard).

Names are DNS-1123 labels derived from the service (and dashboard); namespace and
extra labels come from the spec's ``service.kubernetes``. Without a namespace the
objects land where they are applied (Argo CD destination, Flux targetNamespace).
"""

from __future__ import annotations

import re

from obsgen.model.types import Service

OUT_DIR = "kubernetes"
DNS_LABEL_MAX = 63


def dns_label(text: str) -> str:
    """A valid DNS-1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric, ≤ 63."""
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:DNS_LABEL_MAX].strip("-")
    return out or "obsgen"


def metadata(service: Service, name: str) -> dict:
    """``metadata`` of an object named ``name``: standard labels plus the spec's (which win)."""
    labels = {"app.kubernetes.io/managed-by": "obsgen", "app.kubernetes.io/name": dns_label(service.name),
              **service.kubernetes.labels}
    out: dict = {"name": dns_label(name)}
    if service.kubernetes.namespace:
        out["namespace"] = service.kubernetes.namespace
    out["labels"] = dict(sorted(labels.items()))
    return out
