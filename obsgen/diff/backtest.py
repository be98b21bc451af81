"""``obsgen diff --prometheus URL``: how often the old and the new version of each changed alert would have
fired over the last ``--lookback`` of real data: the number that settles a threshold argument.

Each version's expression is evaluated by the Prometheus at URL (``/api/v1/query_range``, one step per
minute, coarser for lookbacks over a week) and ``for``/``keep_firing_for`` are applied as the rule manager
does: an instance fires once its condition has held for ``for`` at consecutive evaluations, and stays firing
``keep_firing_for`` after it stops. The result is approximate by the step (a rule group evaluates every 15s
to 1m) and needs the recordings the expressions read to exist in that Prometheus.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from obsgen.diff import exprs
from obsgen.diff.model import Backtest, Condition, Duration, Firing, Report, Threshold
from obsgen.diff.outputs import Alert
from obsgen.errors import UsageError

MAX_POINTS = 11000  # Prometheus refuses a range query with more points per series


@dataclass(frozen=True)
class Window:
    end: float  # Unix seconds
    lookback: str
    seconds: float
    step: float

    @classmethod
    def of(cls, lookback: str, end: float) -> Window:
        try:
            seconds = exprs.seconds(lookback)
        except ValueError:
            raise UsageError(f"--lookback {lookback}: not a duration such as 7d or 12h") from None
        if seconds <= 0:
            raise UsageError(f"--lookback {lookback}: must be longer than 0s")
        step = max(60.0, math.ceil(seconds / MAX_POINTS / 60) * 60)
        return cls(end, lookback, seconds, step)


class Prometheus:
    def __init__(self, url: str, timeout: float = 60.0):
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--prometheus {url}: not an http(s) URL")
        self.url, self.timeout = url.rstrip("/"), timeout

    def query_range(self, expr: str, window: Window, lead: float = 0.0) -> list[dict]:
        """``expr`` at every step of the window, and of ``lead`` seconds before it (an alert's ``for``: a
        condition that began before the window is already firing at its start, as it is in Prometheus)."""
        # Aligned to the step, so the evaluations fall where the rule manager's would, run after run.
        end = window.end - window.end % window.step
        return self._ask("query_range", {"query": expr, "start": end - window.seconds - lead, "end": end,
                                         "step": window.step})

    def holds_series(self, selector: str, window: Window) -> bool:
        """Whether ``selector`` matched any series during the window (one instant query at its end)."""
        end = window.end - window.end % window.step
        lookback = f"{int(window.seconds + window.step)}s"
        return bool(self._ask("query", {"query": f"count(present_over_time({selector}[{lookback}]))", "time": end}))

    def _ask(self, endpoint: str, params: dict) -> list[dict]:
        request = urllib.request.Request(f"{self.url}/api/v1/{endpoint}",
                                         data=urllib.parse.urlencode(params).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            body = _json_or_none(exc.read())
            if body is None:
                raise UsageError(f"--prometheus {self.url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise UsageError(f"--prometheus {self.url}: {getattr(exc, 'reason', exc)}") from None
        if body.get("status") != "success":
            raise QueryFailed(f"{body.get('errorType', 'error')}: {body.get('error', 'unknown')}")
        return body["data"]["result"]


class QueryFailed(Exception):
    """Prometheus refused one expression (e.g. it reads a function this Prometheus lacks)."""


def _json_or_none(data: bytes):
    try:
        return json.loads(data)
    except ValueError:
        return None


def firing(series: list[dict], window: Window, for_s: float, keep_s: float) -> Firing:
    """Episodes of firing (over all instances) and the minutes during which at least one instance fired, within
    the window; ``series`` may start earlier (:meth:`Prometheus.query_range`'s lead), so that a condition already
    holding when the window opens counts its ``for`` from when it began."""
    opens = window.end - window.end % window.step - window.seconds
    episodes = 0
    spans: list[tuple[float, float]] = []
    for s in series:
        times = [float(t) for t, _ in s["values"]]
        start = prev = None
        for t in times + [math.inf]:
            if prev is not None and t - prev > window.step * 1.5:  # the condition stopped holding
                fires_at = start + math.ceil(for_s / window.step) * window.step
                if fires_at <= prev and prev + window.step + keep_s > opens:
                    episodes += 1
                    spans.append((max(fires_at, opens), prev + window.step + keep_s))
                start = None
            if start is None:
                start = t
            prev = t
    covered, last = 0.0, -math.inf
    for lo, hi in sorted(spans):
        lo = max(lo, last)
        if hi > lo:
            covered += hi - lo
            last = hi
    return Firing(episodes, round(covered / 60, 1))


def _evaluate(prom: Prometheus, rule: Alert, window: Window) -> Firing:
    for_s = exprs.seconds(rule.for_)
    return firing(prom.query_range(rule.expr, window, lead=for_s), window, for_s, exprs.seconds(rule.keep_firing_for))


def _missing(prom: Prometheus, rules: tuple[Alert, Alert], window: Window, seen: dict[str, bool]) -> tuple[str, ...]:
    """The selectors either version reads that held no series over the window (each asked once per run): a
    Prometheus without obsgen's recordings, or the wrong Prometheus, replays every version as never firing."""
    wanted = dict.fromkeys(s.promql() for rule in rules if (parsed := exprs.parse(rule.expr))
                           for s in parsed.selectors)
    for selector in wanted:
        if selector not in seen:
            seen[selector] = prom.holds_series(selector, window)
    return tuple(s for s in wanted if not seen[s])


def run(report: Report, url: str, window: Window) -> None:
    """Attach a :class:`Backtest` to every changed alert whose firing could differ (threshold, for, condition)."""
    prom, seen = Prometheus(url), {}
    for service in report.services:
        for alert in service.alerts:
            old, new = alert.rules
            if old is None or new is None or not any(isinstance(c, (Threshold, Duration, Condition))
                                                     for c in alert.changes):
                continue
            try:
                alert.backtest = Backtest(url, window.lookback, _evaluate(prom, old, window),
                                          _evaluate(prom, new, window), missing=_missing(prom, (old, new), window, seen),
                                          step_seconds=window.step)
            except QueryFailed as exc:
                alert.backtest = Backtest(url, window.lookback, None, None, str(exc))
