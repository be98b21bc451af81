"""Render Prometheus alert templates the way Prometheus does, for the expected annotations.

Only the forms obsgen writes are supported (``$labels.x``, ``$value``, the humanize
functions, and ``{{ if $labels.x }}…{{ else }}…{{ end }}`` without nesting, for an
annotation that reads differently when a label is empty); anything else is a bug in a
kind module and fails loudly.
The number formats follow Prometheus's ``template.go`` (``%.4g`` with SI prefixes).
"""

from __future__ import annotations

import decimal
import math
import re
from urllib.parse import quote_plus

_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_IF_LABEL = re.compile(r"\{\{\s*if \$labels\.(\w+)\s*\}\}(.*?)(?:\{\{\s*else\s*\}\}(.*?))?\{\{\s*end\s*\}\}", re.S)


def humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
    else:
        for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(v) >= 1:
                break
            prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize_percentage(v: float) -> str:
    return _g4(v * 100) + "%"


def humanize_duration(v: float) -> str:
    """Seconds as Prometheus prints them: ``2s``, ``1m 30s``, ``500ms``."""
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign, v = ("-", -v) if v < 0 else ("", v)
        whole = int(v)
        days, hours, minutes, seconds = whole // 86400, whole // 3600 % 24, whole // 60 % 60, whole % 60
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_g4(v)}{prefix}s"


def _g4(v: float) -> str:
    """Go's ``%.4g``: like C's, but with at least two exponent digits."""
    return "%.4g" % v


def _plain(v: float) -> str:
    """Go's ``%v`` for a float64, as Prometheus prints ``{{ $value }}``: the shortest digits that read back,
    in exponent form when the exponent is below -4 or 6 and above (474710245 → ``4.74710245e+08``)."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0"
    digits, exp = _shortest(v)
    sign = "-" if v < 0 else ""
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    whole, frac = (digits[: exp + 1].ljust(exp + 1, "0"), digits[exp + 1:]) if exp >= 0 else \
        ("0", "0" * (-exp - 1) + digits)
    return sign + whole + ("." + frac if frac else "")


def _shortest(v: float) -> tuple[str, int]:
    """The shortest decimal digits that read back as ``v``, and the exponent of the first one."""
    sign, digits, exponent = decimal.Decimal(repr(abs(v))).normalize().as_tuple()
    text = "".join(map(str, digits))
    return text, exponent + len(text) - 1


_FUNCS = {"$value": _plain, "$value | humanize": humanize, "$value | humanizePercentage": humanize_percentage,
          "$value | humanizeDuration": humanize_duration}


def render(template: str, labels: dict[str, str], value: float | None) -> str:
    def action(m: re.Match) -> str:
        expr = m.group(1)
        if expr.startswith("$labels.") and expr.endswith(" | urlquery"):  # Go's url.QueryEscape
            return quote_plus(labels.get(expr[len("$labels."):-len(" | urlquery")], ""), safe="")
        if expr.startswith("$labels."):
            return labels.get(expr[len("$labels."):], "")
        if expr in _FUNCS:
            if value is None:
                raise ValueError(f"template uses $value but the scenario gives none: {template!r}")
            return _FUNCS[expr](float(value))
        raise ValueError(f"unsupported template action {{{{ {expr} }}}}")

    def branch(m: re.Match) -> str:  # Go's `if`: an absent label is the empty string, which is false
        return m.group(2) if labels.get(m.group(1), "") else (m.group(3) or "")

    return _ACTION.sub(action, _IF_LABEL.sub(branch, template))
