"""The vector selectors of one PromQL expression, each with what the expression does to it.

The only module of verify that knows ``promql_parser``. A :class:`Read` is one
selector as the expression reads it: the metric, the matchers, the function
right around it (``rate``, ``histogram_quantile``'s inner ``rate``, none for a
plain level), its range window, and the number a ``histogram_quantile`` result
is compared with (an alert on a p95 above 0.5 s can only fire if the histogram
has buckets above 0.5 s). Grafana's ``$__rate_interval`` cannot be parsed, so it
is read as a range Grafana sizes itself (``grafana_range``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from obsgen.model.types import Duration

# Grafana's interval variables, in the range position of a query: Grafana replaces them before Prometheus sees them.
_GRAFANA_RANGE = re.compile(r"\[\s*\$(?:__rate_interval|__interval|__range|\{__rate_interval\})\s*\]")
_PLACEHOLDER = "[1m]"
_FILTERS = (">", "<", ">=", "<=", "==", "!=")
_SAME_SCALE = ("max", "min", "avg", "topk", "bottomk", "quantile")  # aggregations that keep a quantile's unit


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # =, !=, =~, !~
    value: str

    def matches(self, value: str | None) -> bool:
        """Whether a series whose ``label`` is ``value`` (None: the series lacks it) passes, as Prometheus
        decides it (regexes are anchored; a missing label reads as the empty string)."""
        text = value or ""
        if self.op in ("=", "!="):
            return (text == self.value) == (self.op == "=")
        try:
            hit = re.fullmatch(self.value, text) is not None
        except re.error:  # RE2 syntax Python cannot read: do not judge it
            return True
        return hit == (self.op == "=~")

    def __str__(self) -> str:
        from obsgen.promql import quote

        return f"{self.label}{self.op}{quote(self.value)}"


@dataclass(frozen=True)
class Read:
    """One selector and what the expression does with it."""

    metric: str
    matchers: tuple[Matcher, ...]
    function: str | None = None  # the function call right around the selector (None: read as a level)
    range: Duration | None = None  # of a matrix selector: ``rate(x[5m])``
    grafana_range: bool = False  # the range is Grafana's $__rate_interval, sized by Grafana
    quantile_above: float | None = None  # histogram_quantile(...) of this is compared with this number
    compared: float | None = None  # the selector's own value is compared with this number (a recording's output)

    @property
    def selector(self) -> str:
        """The selector in PromQL, as obsgen writes selectors (:func:`obsgen.promql.selector`)."""
        from obsgen.promql import KEYWORDS, quote

        parts = [str(m) for m in self.matchers]
        if self.metric.lower() in KEYWORDS:
            return "{" + ", ".join([f"__name__={quote(self.metric)}", *parts]) + "}"
        return self.metric + "{" + ", ".join(parts) + "}"

    def equal(self) -> dict[str, str]:
        """The equality matchers, label: value."""
        return {m.label: m.value for m in self.matchers if m.op == "="}


class Unparsable(ValueError):
    """An expression promql_parser cannot read (obsgen wrote it, so this is a bug, or a custom expression)."""


def reads(expr: str, compared: float | None = None) -> list[Read]:
    """Every vector selector of ``expr``, in the order written; ``compared`` is the number the whole expression
    is compared with (a recording rule's expression, read for an alert that compares the recording)."""
    import promql_parser

    grafana = bool(_GRAFANA_RANGE.search(expr))
    text = _GRAFANA_RANGE.sub(_PLACEHOLDER, expr)
    try:
        node = promql_parser.parse(text)
    except (ValueError, RuntimeError) as exc:
        raise Unparsable(f"cannot parse `{expr}`: {exc}") from None
    return list(_walk(node, _Context(grafana=grafana, compared=compared)))


@dataclass(frozen=True)
class _Context:
    function: str | None = None
    grafana: bool = False
    compared: float | None = None  # the number this subexpression is compared with (a filtering comparison)
    quantile_above: float | None = None


def _walk(node, ctx: _Context) -> Iterator[Read]:  # noqa: C901 - one branch per node type of the AST
    import promql_parser as p

    if isinstance(node, p.VectorSelector):
        yield _read(node, ctx, None)
    elif isinstance(node, p.MatrixSelector):
        yield _read(node.vector_selector, ctx, node.range)
    elif isinstance(node, p.Call):
        name = node.func.name
        for i, arg in enumerate(node.args):
            inner = _Context(function=name, grafana=ctx.grafana)
            if name == "histogram_quantile" and i == 1:
                inner = replace(inner, quantile_above=ctx.compared)
            elif ctx.quantile_above is not None:
                inner = replace(inner, quantile_above=ctx.quantile_above)
            yield from _walk(arg, inner)
    elif isinstance(node, p.ParenExpr):
        yield from _walk(node.expr, ctx)
    elif isinstance(node, p.UnaryExpr):
        yield from _walk(node.expr, replace(ctx, compared=None))
    elif isinstance(node, p.AggregateExpr):
        keeps = str(node.op) in _SAME_SCALE
        yield from _walk(node.expr, replace(ctx, function=None, compared=ctx.compared if keeps else None))
        if node.param is not None:
            yield from _walk(node.param, replace(ctx, function=None, compared=None))
    elif isinstance(node, p.SubqueryExpr):
        yield from _walk(node.expr, replace(ctx, function=None, compared=None))
    elif isinstance(node, p.BinaryExpr):
        op = str(node.op)
        filtering = op in _FILTERS and not (node.modifier is not None and node.modifier.return_bool)
        for side, other in ((node.lhs, node.rhs), (node.rhs, node.lhs)):  # `x > 0.5` and `0.5 < x` alike
            number = other.val if filtering and isinstance(other, p.NumberLiteral) else None
            yield from _walk(side, replace(ctx, function=None, compared=number))


def _read(vs, ctx: _Context, window) -> Read:
    matchers, name = [], vs.name
    for m in vs.matchers.matchers:
        if m.name == "__name__" and str(m.op) == "MatchOp.Equal":
            name = m.value
            continue
        matchers.append(Matcher(m.name, _OPS[str(m.op)], m.value))
    return Read(metric=name or "", matchers=tuple(matchers), function=ctx.function,
                range=Duration.seconds(window.total_seconds()) if window is not None else None,
                grafana_range=ctx.grafana and window is not None, quantile_above=ctx.quantile_above,
                compared=ctx.compared if ctx.function is None else None)


_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
