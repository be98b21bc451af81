"""Value types shared by every component kind."""

from __future__ import annotations

import re
from dataclasses import field

from obsgen.model.records import record, value

_UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1), ("ms", 0.001))
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
# Prometheus' own duration syntax (model.ParseDuration): each unit at most once, largest first.
DURATION = re.compile(r"0|(?=[0-9])([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?")


@value(order=True)
class Duration:
    """A Prometheus duration, kept in milliseconds so scaling and formatting are exact."""

    millis: int

    @classmethod
    def parse(cls, text: str) -> Duration:
        """A duration as Prometheus writes it (``1h30m``, ``500ms``, ``0``); anything else is a ValueError."""
        if not isinstance(text, str) or not DURATION.fullmatch(text):
            raise ValueError(f"`{text}` is not a Prometheus duration (such as 30s, 5m or 1h30m)")
        factors = dict(_UNITS)
        return cls(sum(int(n) * round(factors[u] * 1000) for n, u in _PART.findall(text)))

    @classmethod
    def seconds(cls, s: float) -> Duration:
        return cls(round(s * 1000))

    @property
    def total_seconds(self) -> float:
        return self.millis / 1000

    def scaled(self, divisor: float) -> Duration:
        return Duration(max(round(self.millis / divisor), 1000 if self.millis else 0))

    def __add__(self, other: Duration) -> Duration:
        return Duration(self.millis + other.millis)

    def __sub__(self, other: Duration) -> Duration:
        return Duration(self.millis - other.millis)

    def __mul__(self, k: int) -> Duration:
        return Duration(self.millis * k)

    def __str__(self) -> str:
        if self.millis == 0:
            return "0s"
        rest, out = self.millis, ""
        for unit, secs in _UNITS:
            if unit == "w":  # 30d reads better than 4w2d
                continue
            size = round(secs * 1000)
            if rest >= size:
                out += f"{rest // size}{unit}"
                rest %= size
        return out


@value
class MetricRef:
    """A metric name plus label matchers that narrow it (``cache_gets_total{result="hit"}``).

    ``origin`` names the library or exporter that publishes it (``Micrometer``);
    ``None`` means the application defines it and must register it itself.
    """

    name: str
    matchers: tuple[tuple[str, str], ...] = ()
    origin: str | None = field(default=None, compare=False)
    label: str | None = None
    """The label naming the component on this metric, when it is not the component's own ``label``."""
    value: str | None = None
    """That label's value on this metric, when it is not the component's value."""

    @classmethod
    def of(cls, value: str | dict) -> MetricRef:
        if isinstance(value, str):
            return cls(value)
        return cls(value["name"], tuple(sorted(value.get("matchers", {}).items())), None, value.get("label"),
                   value.get("value"))


@value
class AlertTuning:
    """A user's override of one alert's defaults."""

    enabled: bool = True
    severity: str | None = None
    for_: Duration | None = None


Labels = dict[str, str]


@record(kw_only=True)
class KubernetesOutput:
    """Metadata of the generated Kubernetes objects (PrometheusRule, GrafanaDashboard)."""

    namespace: str | None
    labels: Labels


@record(kw_only=True)
class GrafanaOperator:
    """grafana-operator ``GrafanaDashboard`` manifests: off unless enabled."""

    enabled: bool
    instance_selector: Labels


@record(kw_only=True)
class GrafanaOutput:
    """Grafana provisioning: ``folder`` defaults to the team, ``dashboards_path`` to a per-service directory."""

    folder: str | None
    dashboards_path: str | None
    operator: GrafanaOperator


@record(kw_only=True)
class AlertmanagerOutput:
    """Receivers per severity; ``critical`` and ``warning`` default to ``<team>-pager`` and ``<team>-tickets``."""

    receivers: dict[str, str]


@record(kw_only=True)
class Service:
    """``service:`` of a spec, as the schema defaulted it."""

    name: str
    team: str
    description: str
    selector: Labels
    profile: str
    runtime: str | None
    """What the service runs on, as the spec says it (``FastAPI``); ``None``: unsaid, runbooks stay neutral."""
    logs: str | None
    """How to read the application's logs (a command or a path); ``None``: unsaid."""
    assumptions: tuple[str, ...]
    runbook_base_url: str
    cluster_label: str | None
    probe_routes: tuple[str, ...]
    """Routes only health probes call (``service.probe_routes``): no traffic guard counts them."""
    dashboard_base_url: str | None
    alerts: dict[str, AlertTuning]
    kubernetes: KubernetesOutput
    grafana: GrafanaOutput
    alertmanager: AlertmanagerOutput
    environment: str | None
    """The environment this is the spec of (``environments:``), never written under ``service:``: every alert
    carries it as its ``environment`` label and the Alertmanager routes match it, so environments that share
    one Alertmanager stay apart."""


@record(kw_only=True)
class ComponentSpec:
    """Fields every component kind has; kinds subclass it with their own settings."""

    name: str
    description: str
    label: str
    value: str | None
    selector: Labels
    metrics: dict[str, MetricRef]
    alerts: dict[str, AlertTuning]
    history: tuple[str, ...]
    assumptions: tuple[str, ...]
    """What the spec guesses about this component rather than reads in the service's documents."""
