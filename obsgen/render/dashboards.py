"""Grafana dashboard files: one JSON per dashboard of the service model.

The dashboards themselves are laid out with the model (:mod:`obsgen.model.dashboards`);
turning one into Grafana JSON is the job of :mod:`obsgen.render.grafana`, the only
module that knows grafanalib.
"""

from __future__ import annotations

from obsgen.model.service import ServiceModel

OUT_DIR = "dashboards"


def _path(service: str, slug: str) -> str:
    return f"{service}/{OUT_DIR}/{slug}.json"


def render(model: ServiceModel) -> dict[str, str]:
    """``{"<service>/dashboards/<slug>.json": json_text}`` for every dashboard of the service."""
    from obsgen.render import grafana

    base = model.service.runbook_base_url
    return {_path(d.service, d.slug): grafana.to_json(d, runbook_base_url=base) for d in model.dashboards}
