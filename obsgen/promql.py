"""Small, safe PromQL building blocks: quoting, selectors, numbers.

Every label value that reaches PromQL goes through :func:`quote`, so a spec value
can never change what a query means — in Prometheus, and in Grafana, which
replaces ``$name``, ``${name}`` and ``[[name]]`` in a panel's query before
Prometheus sees it: ``$`` is written as the escape ``\\x24`` (the same string
to PromQL, nothing for Grafana to replace). Dashboard variables that should be
replaced are marked :class:`Variable`.
"""

from __future__ import annotations

from collections.abc import Mapping

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "$": "\\x24"}


class Variable(str):
    """A Grafana dashboard variable (``$job``): quoted as is, for Grafana to replace."""


def quote(value: str) -> str:
    """A PromQL string literal (Go escaping rules) that means exactly ``value``, in Prometheus and Grafana."""
    if isinstance(value, Variable):
        return f'"{value}"'
    out = []
    for i, ch in enumerate(value):
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ch == "[" and value[i + 1: i + 2] == "[":
            out.append("\\x5b")  # Grafana's old [[name]] variable syntax
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def regex_quote(value: str) -> str:
    """Escape RE2 metacharacters so ``value`` matches itself inside ``=~``."""
    return "".join("\\" + ch if ch in r".^$*+?()[]{}|\\" else ch for ch in value)


def matchers(labels: Mapping[str, str], regex: Mapping[str, str] | None = None,
             not_regex: Mapping[str, str] | None = None) -> str:
    """``{a="b",c=~"d|e",f!~"g"}``; exact matchers in the order given, then regex, then negated regex ones."""
    parts = [f"{k}={quote(v)}" for k, v in labels.items()]
    parts += [f"{k}=~{quote(v)}" for k, v in (regex or {}).items()]
    parts += [f"{k}!~{quote(v)}" for k, v in (not_regex or {}).items()]
    return "{" + ", ".join(parts) + "}"


# Words the PromQL lexer reads as keywords, operators or numbers: a metric of that name cannot be written bare
# (`on{a="b"}` is a parse error), only as `{__name__="on", a="b"}`. Generous on purpose: the long form is always valid.
KEYWORDS = frozenset((
    "and", "or", "unless", "atan2", "bool", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "start", "end", "inf", "nan", "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
    "topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio"))


def selector(metric: str, labels: Mapping[str, str], regex: Mapping[str, str] | None = None) -> str:
    """``metric{labels}``, or ``{__name__="metric", labels}`` when the metric's name is a PromQL keyword."""
    if metric.lower() in KEYWORDS:
        return matchers({"__name__": metric, **labels}, regex)
    return metric + matchers(labels, regex)


def number(x: float) -> str:
    """Shortest rendering of a threshold: 0.8, 180, 1e-05.

    15 significant digits: any number written in a spec with up to 15 digits comes out as written (the rule
    means the spec's number), while float noise in computed test values (7.499999999999998) is rounded away.
    """
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return format(x, ".15g")
