"""What a PromQL expression compares and reads, from its syntax tree (the one module that imports
``promql_parser``).

``obsgen diff`` never compares rule text: formatting may change between obsgen versions, and a
threshold is more than a substring. An expression is reduced to its comparisons against constants
(``ratio < 0.8``: signal, operator, value), the selectors it reads, and a fingerprint of everything else,
so "the threshold moved" and "the condition changed" are told apart.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

COMPARISONS = ("<", ">", "<=", ">=", "==", "!=")
_FLIPPED = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}
_ARITHMETIC = {"+": float.__add__, "-": float.__sub__, "*": float.__mul__, "/": lambda a, b: a / b if b else math.nan,
               "%": lambda a, b: math.fmod(a, b) if b else math.nan, "^": lambda a, b: a ** b}
_MATCH_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
# Grafana's interval variables stand where PromQL wants a duration; any duration parses the same.
_GRAFANA_INTERVAL = re.compile(r"\$\{?__(?:rate_interval|interval|range)(?::\w+)?\}?")


@dataclass(frozen=True)
class Comparison:
    """``signal op value`` with the signal on the left (``0.8 > x`` reads as ``x < 0.8``).

    ``factors`` are the literals the constant was written as when it is a product (``14.4 * 0.01``).
    """

    signal: str
    op: str
    value: float
    factors: tuple[float, ...]

    def looser(self, new: float) -> bool | None:
        """Whether ``new`` fires less often than ``value`` (``None`` for ``==``/``!=``)."""
        if self.op in (">", ">="):
            return new > self.value
        if self.op in ("<", "<="):
            return new < self.value
        return None


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value)

    def admits(self, labels: Mapping[str, str]) -> bool:
        """Whether series carrying ``labels`` can match (labels not given are not held against it)."""
        for label, op, value in self.matchers:
            if label not in labels:
                continue
            have = labels[label]
            if op == "=" and have != value or op == "!=" and have == value:
                return False
            if op in ("=~", "!~") and bool(_fullmatch(value, have)) != (op == "=~"):
                return False
        return True


    def promql(self) -> str:
        """The selector as PromQL (PromQL's double-quoted strings take JSON's escapes)."""
        return self.name + "{" + ", ".join(f"{label}{op}{json.dumps(value)}" for label, op, value in self.matchers) + "}"


@dataclass(frozen=True)
class Parsed:
    comparisons: tuple[Comparison, ...]
    selectors: tuple[Selector, ...]
    fingerprint: tuple  # equal for two expressions that differ at most in their comparison constants


def _fullmatch(pattern: str, text: str) -> bool:
    try:
        return re.fullmatch(pattern, text) is not None
    except re.error:
        return True  # an RE2 construct Python lacks: assume it may match


@lru_cache(maxsize=4096)
def parse(expr: str) -> Parsed | None:
    """The expression's comparisons, selectors and fingerprint; ``None`` when it is not PromQL."""
    import promql_parser as p

    try:
        root = p.parse(_GRAFANA_INTERVAL.sub("5m", expr))
    except (ValueError, RuntimeError):
        return None
    comparisons: list[Comparison] = []
    others: list[float] = []
    selectors: list[Selector] = []
    _visit(root, comparisons, others, selectors)
    zero = p.parse("0")
    skeleton = str(p.transform(root, pre_visit=lambda node: zero if isinstance(node, p.NumberLiteral) else None))
    fingerprint = (skeleton, tuple(others), tuple((c.signal, c.op) for c in comparisons))
    return Parsed(tuple(comparisons), tuple(dict.fromkeys(selectors)), fingerprint)


def divisor(expr: str) -> float | None:
    """The constant ``expr`` is divided by at its top (``x * y / 0.01`` → 0.01), else ``None``."""
    import promql_parser as p

    try:
        node = p.parse(expr)
    except (ValueError, RuntimeError):
        return None
    while isinstance(node, p.ParenExpr):
        node = node.expr
    if isinstance(node, p.BinaryExpr) and str(node.op) == "/":
        return _constant(node.rhs)
    return None


def _visit(node, comparisons: list[Comparison], others: list[float], selectors: list[Selector]) -> None:
    """Collect comparisons against constants, every other number literal (in order), and the selectors."""
    import promql_parser as p

    if isinstance(node, p.BinaryExpr) and str(node.op) in COMPARISONS:
        for const, signal, op in ((node.rhs, node.lhs, str(node.op)), (node.lhs, node.rhs, _FLIPPED[str(node.op)])):
            value = _constant(const)
            if value is not None and _constant(signal) is None:
                comparisons.append(Comparison(_signal(signal), op, value, _factors(const)))
                _visit(signal, comparisons, others, selectors)
                return
    if isinstance(node, p.NumberLiteral):
        others.append(node.val)
    elif isinstance(node, p.VectorSelector):
        selectors.append(_selector(node))
    for child in _children(node):
        _visit(child, comparisons, others, selectors)


def _children(node) -> Iterator:
    import promql_parser as p

    if isinstance(node, p.BinaryExpr):
        yield from (node.lhs, node.rhs)
    elif isinstance(node, (p.ParenExpr, p.UnaryExpr, p.SubqueryExpr)):
        yield node.expr
    elif isinstance(node, p.AggregateExpr):
        if node.param is not None:
            yield node.param
        yield node.expr
    elif isinstance(node, p.Call):
        yield from node.args
    elif isinstance(node, p.MatrixSelector):
        yield node.vector_selector


def _constant(node) -> float | None:
    """The value of a constant subexpression (literals and arithmetic), else ``None``."""
    import promql_parser as p

    if isinstance(node, p.NumberLiteral):
        return float(node.val)
    if isinstance(node, p.ParenExpr):
        return _constant(node.expr)
    if isinstance(node, p.UnaryExpr):
        inner = _constant(node.expr)
        return None if inner is None else -inner
    if isinstance(node, p.BinaryExpr) and str(node.op) in _ARITHMETIC:
        a, b = _constant(node.lhs), _constant(node.rhs)
        return None if a is None or b is None else _ARITHMETIC[str(node.op)](a, b)
    return None


def _factors(node) -> tuple[float, ...]:
    import promql_parser as p

    while isinstance(node, p.ParenExpr):
        node = node.expr
    if isinstance(node, p.BinaryExpr) and str(node.op) == "*":
        return _factors(node.lhs) + _factors(node.rhs)
    value = _constant(node)
    return () if value is None else (value,)


def _signal(node) -> str:
    """What a comparison compares: the first metric its other side reads (the expression if none)."""
    import promql_parser as p

    found: list[str] = []
    p.walk(node, lambda n: found.append(_selector(n).name) if isinstance(n, p.VectorSelector) else None)
    return next((name for name in found if name), str(node))


def _selector(node) -> Selector:
    matchers = tuple((m.name, _MATCH_OPS[str(m.op)], m.value) for m in node.matchers.matchers)
    name = node.name or next((v for label, op, v in matchers if label == "__name__" and op == "="), "")
    return Selector(name, tuple(m for m in matchers if m[0] != "__name__"))


def same(a: str, b: str) -> bool:
    """Whether two expressions mean the same, whatever their formatting (text when not PromQL)."""
    pa, pb = parse(a), parse(b)
    if pa is None or pb is None:
        return " ".join(a.split()) == " ".join(b.split())
    return pa.fingerprint == pb.fingerprint and [c.value for c in pa.comparisons] == [c.value for c in pb.comparisons]


def seconds(duration: str) -> float:
    """A Prometheus duration (``5m``, ``1h30m``; empty and ``0s`` are 0) in seconds; ValueError if not one."""
    import promql_parser as p

    if not duration or duration.strip("0") in ("", "s", "ms", "m", "h", "d", "w", "y"):
        return 0.0
    return p.parse_duration(duration).total_seconds()
