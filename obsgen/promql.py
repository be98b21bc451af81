"""Small, safe PromQL building blocks: quoting, selectors, numbers.

Every label value that reaches PromQL goes through :func:`quote`, so a spec value
can never change what a query means.
"""

from __future__ import annotations

from collections.abc import Mapping


def quote(value: str) -> str:
    """A PromQL string literal (Go escaping rules) that means exactly ``value``."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


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


def number(x: float) -> str:
    """Shortest exact-enough rendering of a threshold: 0.8, 180, 1e-05."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return format(x, ".12g")
