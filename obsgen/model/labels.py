"""Which labels the series of a PromQL expression's result carry, read from the expression tree.

An Alertmanager inhibit rule compares labels of two alerts (``equal: [instance]``); an alert carries its rule's
static labels plus the labels of its expression's result. ``sum by (instance) (x)`` keeps exactly ``instance``;
a plain selector keeps the labels it matches and, for a scraped metric, the target labels Prometheus attaches
to every sample (``instance``, ``job``; a recording rule's ``a:b:c`` series has only what its rule kept, of which
the selector's matchers are certain); ``absent(x{a="b"})`` only ``a``. :func:`carried` answers for any expression
obsgen builds, so that an inhibition is emitted exactly when both alerts can carry what it compares.
"""

from __future__ import annotations

from obsgen.model.promql import Agg, Bin, Call, Expr, Neg, Num, Offset, Paren, Range, Selector, Seconds, Str

SCRAPED = frozenset(("instance", "job"))
"""Labels Prometheus attaches to every scraped series (its target labels)."""

_SET_OPS = ("and", "unless")  # keep the left side's series
_NO_LABELS = ("vector", "scalar", "time")
_ABSENCE = ("absent", "absent_over_time")


def carried(expr: Expr) -> frozenset[str]:
    """The labels every series of ``expr``'s result is certain to carry."""
    if isinstance(expr, Selector):
        matched = frozenset(m.name for m in expr.matchers if m.op == "=")
        return matched if ":" in expr.metric else matched | SCRAPED
    if isinstance(expr, (Paren, Neg, Range, Offset)):
        return carried(expr.expr)
    if isinstance(expr, (Num, Seconds, Str)):
        return frozenset()
    if isinstance(expr, Agg):
        if expr.without:
            return carried(expr.expr) - set(expr.by or ())
        return frozenset(expr.by or ())
    if isinstance(expr, Bin):
        return _binary(expr)
    if isinstance(expr, Call):
        return _call(expr)
    raise TypeError(f"carried(): no rule for {type(expr).__name__}")


def has(expr: Expr, label: str) -> bool:
    """Whether every series of ``expr``'s result carries ``label``."""
    return label in carried(expr)


def _binary(node: Bin) -> frozenset[str]:
    """Prometheus's result labels: set operators keep the left side's series (``or`` either side's), a filter
    keeps the filtered side, arithmetic and ``bool`` keep the ``on`` labels or the left side without ``ignoring``
    (``group_left``/``group_right``: the many side)."""
    left, right = carried(node.lhs), carried(node.rhs)
    if node.op == "or":
        return left & right
    if node.op in _SET_OPS:
        return left
    if isinstance(node.lhs, (Num, Seconds)):
        return right
    if isinstance(node.rhs, (Num, Seconds)):
        return left
    if node.group:
        return left if node.group[0] == "left" else right
    if _is_filter(node):
        return left
    if node.on is not None:
        return frozenset(node.on)
    return left - set(node.ignoring or ())


def _is_filter(node: Bin) -> bool:
    return node.op in ("==", "!=", ">", "<", ">=", "<=") and not node.bool_


def _call(node: Call) -> frozenset[str]:
    if node.fn in _NO_LABELS:
        return frozenset()
    if node.fn in _ABSENCE:
        (inner,) = node.args
        while isinstance(inner, (Range, Paren)):
            inner = inner.expr
        return frozenset(m.name for m in inner.matchers if m.op == "=") if isinstance(inner, Selector) else frozenset()
    if node.fn in ("label_replace", "label_join"):
        destination = node.args[1]
        return carried(node.args[0]) | ({destination.value} if isinstance(destination, Str) else set())
    vectors = [carried(a) for a in node.args if not isinstance(a, (Num, Seconds, Str))]
    return vectors[0] if vectors else frozenset()
