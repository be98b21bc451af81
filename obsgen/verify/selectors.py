"""The vector selectors of one PromQL expression tree, each with what the expression does to it.

obsgen keeps PromQL as data (:mod:`obsgen.model.promql`), so nothing here parses
text: a walk over the tree finds every selector with its context. A :class:`Read`
is one selector as the expression reads it: the metric, the matchers, the
component signal it reads (``Selector.signal``), the function right around it
(``rate``, ``histogram_quantile``'s inner ``rate``, none for a plain level), its
range window, and the number a ``histogram_quantile`` result is compared with (an
alert on a p95 above 0.5 s can only fire if the histogram has buckets above 0.5 s).
A window that is a Grafana variable (``$__rate_interval``) is one Grafana sizes
itself (``grafana_range``).

A matcher on the *output* of an expression (an alert reading a recording rule
``route:http_requests:rate5m{uri="/x"}``) selects input series too, when the label
passes through: ``carry`` hands such matchers down to every selector whose series
keep that label on the way up (an aggregation ``by`` it, the matched side of a
binary operation, not a ``label_replace`` that writes it), so the route the alert
is about is looked for in the app's own series.

Under ``group`` and ``count`` only the series' existence counts, not their values:
the function is the aggregation, so no type is expected of them. A selector read
for its absence (inside ``absent()``, or on the right of ``unless``) is a
``presence`` read: an alert reading it that way fires, rather than goes blind,
when it is missing (``ComponentMetricsMissing`` is the alert for exactly that).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from obsgen.model.promql import (Agg, Bin, Call, Expr, Matcher, Neg, Num, Offset, Paren, Range, Selector, Str,
                                 Variable, render, selectors)
from obsgen.model.types import Duration

_FILTERS = (">", "<", ">=", "<=", "==", "!=")
_SAME_SCALE = ("max", "min", "avg", "topk", "bottomk", "quantile")  # aggregations that keep a quantile's unit
_EXISTENCE = ("group", "count")  # aggregations that read which series exist, not their values
_ABSENCE = ("absent", "absent_over_time")
_TRANSPARENT = ("label_replace", "label_join")  # functions that pass their first argument's values through


def matches(m: Matcher, value: str | None) -> bool:
    """Whether a series whose ``m.name`` label is ``value`` (None: the series lacks it) passes ``m``, as
    Prometheus decides it (regexes are anchored; a missing label reads as the empty string)."""
    text = value or ""
    if m.op in ("=", "!="):
        return (text == m.value) == (m.op == "=")
    try:
        hit = re.fullmatch(m.value, text) is not None
    except re.error:  # RE2 syntax Python cannot read: do not judge it
        return True
    return hit == (m.op == "=~")


@dataclass(frozen=True)
class Read:
    """One selector and what the expression does with it."""

    metric: str
    matchers: tuple[Matcher, ...]
    signal: str | None = None  # the component signal the selector reads (None: a recording's, a custom expression's)
    function: str | None = None  # the function call right around the selector (None: read as a level)
    range: Duration | None = None  # of a matrix selector: ``rate(x[5m])``
    grafana_range: bool = False  # the range is Grafana's $__rate_interval, sized by Grafana
    quantile_above: float | None = None  # histogram_quantile(...) of this is compared with this number
    compared: float | None = None  # the selector's own value is compared with this number (a recording's output)
    presence: bool = False  # read for its absence (absent, unless): missing, it makes the alert fire

    @property
    def selector(self) -> str:
        """The selector in PromQL, as obsgen prints it."""
        return render(Selector(self.metric, self.matchers))

    def equal(self) -> dict[str, str]:
        """The equality matchers, label: value."""
        return {m.name: m.value for m in self.matchers if m.op == "="}


def reads(expr: Expr, compared: float | None = None, carry: tuple[Matcher, ...] = ()) -> list[Read]:
    """Every vector selector of ``expr``, in the order printed; ``compared`` is the number the whole expression
    is compared with (a recording rule's expression, read for an alert that compares the recording); ``carry``
    the matchers selecting its output, added to each selector whose labels reach the output."""
    return list(_walk(expr, _Context(compared=compared, carry=carry)))


@dataclass(frozen=True)
class _Context:
    function: str | None = None
    compared: float | None = None  # the number this subexpression is compared with (a filtering comparison)
    quantile_above: float | None = None
    presence: bool = False
    carry: tuple[Matcher, ...] = ()  # matchers on the output that select these series too (see module doc)
    # selectors the left side of an enclosing `unless` reads too: missing, they empty that side as well, so the
    # right side's read of them is no presence read (`x unless x offset 5m` cannot fire for a missing x)
    gated: frozenset[tuple[str, tuple[Matcher, ...]]] = frozenset()


def _walk(node: Expr, ctx: _Context) -> Iterator[Read]:  # noqa: C901 - one branch per node type of the tree
    if isinstance(node, Selector):
        yield _read(node, ctx, None)
    elif isinstance(node, Range):
        inner = node.expr.expr if isinstance(node.expr, Offset) else node.expr
        if isinstance(inner, Selector) and not node.subquery and node.step is None:
            yield _read(inner, ctx, node.window)
        else:  # a subquery: its window is not a scrape's
            yield from _walk(node.expr, replace(ctx, function=None, compared=None))
    elif isinstance(node, (Offset, Paren)):
        yield from _walk(node.expr, ctx)
    elif isinstance(node, Neg):
        yield from _walk(node.expr, replace(ctx, compared=None))
    elif isinstance(node, Call):
        yield from _call(node, ctx)
    elif isinstance(node, Agg):
        carry = _kept(ctx.carry, node.by or (), keep=node.without)
        if node.op in _EXISTENCE:  # values do not matter, so neither does the type
            inner = _Context(function=node.op, presence=ctx.presence, carry=carry, gated=ctx.gated)
        else:
            keeps = node.op in _SAME_SCALE
            inner = replace(ctx, function=None, compared=ctx.compared if keeps else None, carry=carry)
        yield from _walk(node.expr, inner)
        if node.param is not None:
            yield from _walk(node.param, replace(ctx, function=None, compared=None, carry=()))
    elif isinstance(node, Bin):
        filtering = node.op in _FILTERS and not node.bool_
        for side, other in ((node.lhs, node.rhs), (node.rhs, node.lhs)):  # `x > 0.5` and `0.5 < x` alike
            number = other.value if filtering and isinstance(other, Num) else None
            inner = replace(ctx, function=None, compared=number, carry=_matched(node, side, ctx.carry))
            if node.op == "unless" and side is node.rhs:
                inner = replace(inner, presence=True, gated=frozenset((x.metric, x.matchers)
                                                                      for x in selectors(node.lhs)))
            yield from _walk(side, inner)


def _kept(carry: tuple[Matcher, ...], labels: tuple[str, ...], *, keep: bool) -> tuple[Matcher, ...]:
    """The carried matchers whose label survives: those in ``labels`` (``by``), or, with ``keep``, those not
    in them (``without``)."""
    return tuple(m for m in carry if (m.name in labels) != keep)


def _matched(node: Bin, side: Expr, carry: tuple[Matcher, ...]) -> tuple[Matcher, ...]:
    """What selects ``side``'s series of the matchers on a binary operation's output: all of them on the side
    the result takes its labels from (and on both sides of ``or``), only the matching labels on the other."""
    result_side = node.rhs if node.group and node.group[0] == "right" else node.lhs
    if side is result_side or node.op == "or":
        return carry
    if node.on is not None:
        return _kept(carry, node.on, keep=False)
    return _kept(carry, node.ignoring or (), keep=True)


def _call(node: Call, ctx: _Context) -> Iterator[Read]:
    if node.fn in _TRANSPARENT:  # label_replace(sum by (…) (x), …) reads x as the aggregation does
        written = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], Str) else None
        yield from _walk(node.args[0], replace(ctx, carry=tuple(m for m in ctx.carry if m.name != written)))
        return
    for i, arg in enumerate(node.args):
        inner = _Context(function=node.fn, presence=ctx.presence or node.fn in _ABSENCE, carry=ctx.carry,
                         gated=frozenset() if node.fn in _ABSENCE else ctx.gated)
        if node.fn == "histogram_quantile" and i == 1:
            inner = replace(inner, quantile_above=ctx.compared)
        elif ctx.quantile_above is not None:
            inner = replace(inner, quantile_above=ctx.quantile_above)
        yield from _walk(arg, inner)


def _read(s: Selector, ctx: _Context, window: Duration | Variable | None) -> Read:
    metric, matchers = s.metric, s.matchers
    named = next((m for m in matchers if m.name == "__name__" and m.op == "="), None)
    if not metric and named:  # `{__name__="on", …}` as a person writes a custom signal
        metric, matchers = named.value, tuple(m for m in matchers if m is not named)
    own = {m.name for m in matchers}
    matchers += tuple(m for m in ctx.carry if m.name not in own)
    return Read(metric=metric, matchers=matchers, signal=s.signal, function=ctx.function,
                range=window if isinstance(window, Duration) else None, grafana_range=isinstance(window, Variable),
                quantile_above=ctx.quantile_above, compared=ctx.compared if ctx.function is None else None,
                presence=ctx.presence and (s.metric, s.matchers) not in ctx.gated)
