"""Time-scaled rules for fast end-to-end tests (``obsgen build --time-scale N``).

The rendered rule file is rewritten so that time runs N times faster: every
alert ``for`` and ``keep_firing_for``, every group ``interval``, and in every
PromQL expression every range window (``[5m]``), subquery range and resolution
(``[5m:1m]``) and ``offset`` is divided by N, rounded to whole seconds and never
below 1s (``0s`` stays ``0s``). Everything else is left exactly as rendered:
names (``instance_cache:hit:ratio_rate5m`` keeps its name), labels, thresholds,
annotations (their text still speaks of the real durations) and string literals
(a ``[5m]`` inside a label value is not a window).

Limits: numbers that PromQL reads as seconds (``predict_linear(x[1h], 3600)``,
``time() - t > 300``) are not durations in the syntax and are not scaled; obsgen
renders no such expressions.
"""

from __future__ import annotations

import math
import re

import yaml

from obsgen.model.types import Duration
from obsgen.promql import number
from obsgen.render.yamlout import dump

_DURATION = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d|w|y))+")
_RANGE = re.compile(r"\s*(?P<range>[0-9a-z]+)\s*(?::\s*(?P<step>[0-9a-z]+)?\s*)?")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_OFFSET = re.compile(r"(?P<space>\s+)(?P<sign>-?)(?P<dur>[0-9a-z]+)")

HEADER = ("# Time-scaled by `obsgen build --time-scale {n}`: every for, keep_firing_for, range window,\n"
          "# subquery and offset is divided by {n}. For end-to-end tests only; do not deploy.\n")


def scale_duration(text: str, factor: float) -> str:
    """``text`` divided by ``factor``, in whole seconds, at least 1s; ``0s`` stays ``0s``."""
    if factor < 1:
        raise ValueError(f"time scale must be at least 1, got {factor}")
    text = text.strip()
    if text != "0" and not _DURATION.fullmatch(text):
        raise ValueError(f"`{text}` is not a Prometheus duration")
    millis = Duration.parse(text).millis
    if millis == 0:
        return "0s"
    seconds = max(1, math.floor(millis / factor / 1000 + 0.5))
    return str(Duration(seconds * 1000))


def _string_end(expr: str, start: int) -> int:
    """Index just past the string literal that starts at ``start`` ("…", '…' with escapes, `…` raw)."""
    quote, i = expr[start], start + 1
    while i < len(expr):
        ch = expr[i]
        if ch == "\\" and quote != "`":
            i += 2
            continue
        if ch == quote:
            return i + 1
        i += 1
    raise ValueError(f"unterminated string literal at offset {start} in `{expr}`")


def _scale_range(inner: str, factor: float, expr: str) -> str:
    match = _RANGE.fullmatch(inner)
    if not match:
        raise ValueError(f"cannot scale range `[{inner}]` in `{expr}`")
    out = scale_duration(match["range"], factor)
    if ":" in inner:
        out += ":" + (scale_duration(match["step"], factor) if match["step"] else "")
    return out


def scale_expr(expr: str, factor: float) -> str:
    """``expr`` with every range window, subquery range/resolution and offset divided by ``factor``."""
    out: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "\"'`":
            end = _string_end(expr, i)
            out.append(expr[i:end])
            i = end
        elif ch == "#":
            end = expr.find("\n", i)
            end = n if end < 0 else end
            out.append(expr[i:end])
            i = end
        elif ch == "[":
            end = expr.find("]", i)
            if end < 0:
                raise ValueError(f"unclosed `[` at offset {i} in `{expr}`")
            out.append("[" + _scale_range(expr[i + 1:end], factor, expr) + "]")
            i = end + 1
        elif match := _IDENT.match(expr, i):  # a name, read whole: `ratio_rate5m` holds no duration
            word = match[0]
            out.append(word)
            i = match.end()
            offset = _OFFSET.match(expr, i) if word.lower() == "offset" else None
            if offset and _DURATION.fullmatch(offset["dur"]):  # not a label or metric called offset
                out.append(offset["space"] + offset["sign"] + scale_duration(offset["dur"], factor))
                i = offset.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def scale_rules(text: str, factor: float) -> str:
    """A rendered Prometheus rule file with its time divided by ``factor`` (see the module doc)."""
    data = yaml.safe_load(text)
    for group in data.get("groups") or []:
        if "interval" in group:
            group["interval"] = scale_duration(str(group["interval"]), factor)
        for rule in group.get("rules") or []:
            rule["expr"] = scale_expr(str(rule["expr"]), factor)
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    rule[key] = scale_duration(str(rule[key]), factor)
    return HEADER.format(n=number(factor)) + dump(data)
