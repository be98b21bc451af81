"""Grafana provisioning of a service's dashboards: a file provider, and optional grafana-operator manifests.

``grafana/provisioning/dashboards.yaml`` is a dashboards provider (Grafana's
``provisioning/dashboards`` format, ``apiVersion: 1``): Grafana loads every
dashboard JSON under ``options.path`` into ``folder``, rescans every 30 s, and —
``disableDeletion: false`` — removes a dashboard whose file is gone, so
dashboards obsgen prunes disappear from Grafana too. With
``service.grafana.operator.enabled`` each dashboard is also written as a
grafana-operator ``GrafanaDashboard`` (``grafana.integreatly.org/v1beta1``) that
embeds its JSON, for Grafanas that grafana-operator manages.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from obsgen.model.types import Service
from obsgen.render.kubernetes import OUT_DIR, metadata
from obsgen.render.yamlout import dump

PROVIDER_FILE = "grafana/provisioning/dashboards.yaml"
DEFAULT_ROOT = "/var/lib/grafana/dashboards"
RESCAN_SECONDS = 30


def folder(service: Service) -> str:
    return service.grafana.folder or service.team


def dashboards_path(service: Service) -> str:
    return service.grafana.dashboards_path or f"{DEFAULT_ROOT}/{service.name}"


def provider(service: Service) -> dict:
    return {"apiVersion": 1, "providers": [{
        "name": service.name,
        "orgId": 1,
        "type": "file",
        "folder": folder(service),
        "disableDeletion": False,
        "allowUiUpdates": False,
        "updateIntervalSeconds": RESCAN_SECONDS,
        "options": {"path": dashboards_path(service), "foldersFromFilesStructure": False},
    }]}


def dashboard_manifest(service: Service, dashboard_json: str) -> dict:
    """A ``GrafanaDashboard`` named after the dashboard's uid, with the JSON text as written to disk."""
    selector = dict(sorted(service.grafana.operator.instance_selector.items()))
    return {"apiVersion": "grafana.integreatly.org/v1beta1", "kind": "GrafanaDashboard",
            "metadata": metadata(service, json.loads(dashboard_json)["uid"]),
            "spec": {"instanceSelector": {"matchLabels": selector}, "folder": folder(service),
                     "json": dashboard_json}}


def render(service: Service, dashboards: dict[str, str]) -> dict[str, str]:
    """The provider file, plus ``kubernetes/grafanadashboard-<slug>.yaml`` per dashboard when the operator is on.

    ``dashboards`` maps ``<service>/dashboards/<slug>.json`` to its JSON text.
    """
    out = {f"{service.name}/{PROVIDER_FILE}": dump(provider(service))}
    if service.grafana.operator.enabled:
        for path, text in sorted(dashboards.items()):
            slug = PurePosixPath(path).stem
            out[f"{service.name}/{OUT_DIR}/grafanadashboard-{slug}.yaml"] = dump(dashboard_manifest(service, text))
    return out
