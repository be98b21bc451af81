"""Synthetic series for promtool tests, in promtool's expanding notation.

Every scenario runs on one clock: a sample every :data:`STEP`. Builders take
segments of (duration, value) so a scenario reads like the story it tells:
``counter((10*MIN, 5.0))`` is a counter growing 5/s for ten minutes.
"""

from __future__ import annotations

from obsgen.model.promql import number
from obsgen.model.rules import STEP
from obsgen.model.types import Duration

__all__ = ["MAX_FOR", "MIN", "MIN_WINDOW", "RESTART", "STEP", "counter", "gauge", "whole_steps"]
MIN = Duration.parse("1m")
MIN_WINDOW = MIN
"""The shortest range window: four samples at the usual 15s scrape interval."""
MAX_FOR = Duration.parse("1d")
"""The longest ``for``: trouble that must last longer than a day before anyone hears of it is a report, not an
alert (and its promtool test would replay more than a day of samples)."""


def _steps(span: Duration, step: Duration = STEP) -> int:
    steps, rest = divmod(span.millis, step.millis)
    if rest:
        raise ValueError(f"{span} is not a whole number of {step} steps")
    return steps


def whole_steps(span: Duration, step: Duration = STEP) -> Duration:
    """``span`` rounded up to a whole number of steps (a 20 s duration becomes 30 s)."""
    return Duration(-(-span.millis // step.millis) * step.millis)


RESTART = "restart"


def gauge(*segments: tuple[Duration, float | None], step: Duration = STEP) -> str:
    """A gauge that holds each value for its duration: ``gauge((2*MIN, 1), (MIN, 0))``.

    ``None`` is silence: a staleness marker (the scrape failed or the series went
    away), then no samples for the rest of the segment.
    """
    return " ".join(_silence(span, step) if v is None else f"{number(v)}+0x{_steps(span, step) - 1}"
                    for span, v in segments)


def _silence(span: Duration, step: Duration) -> str:
    steps = _steps(span, step)
    return "stale" + (f" _x{steps - 1}" if steps > 1 else "")


def counter(*segments: tuple[Duration, float] | str, start: float = 0, step: Duration = STEP) -> str:
    """A counter rising at each per-second rate for its duration.

    :data:`RESTART` between segments drops it to zero, as a process restart does.
    """
    out, value = [], start
    for segment in segments:
        if segment == RESTART:
            value = 0
            continue
        span, per_second = segment
        inc = per_second * step.total_seconds
        steps = _steps(span, step)
        out.append(f"{number(value)}+{number(inc)}x{steps - 1}")
        value += inc * steps
    return " ".join(out)
