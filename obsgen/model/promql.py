"""PromQL as data: expressions are trees until one printer writes them.

Kinds build expressions from these nodes (``sum_by(("instance",), rate(sel, FIVE_MIN))``)
instead of formatting strings, so that everything downstream reads structure, not
text: the printer scales every window (and every window's length in seconds,
:class:`Seconds`) for ``--time-scale`` (no rewrite of rendered rules), the
promtool packer counts the samples a rule loads and the metrics it selects,
``obsgen verify`` knows which component signal each selector reads, and runbook
queries come from the same builders as the rules.

Every label value that reaches PromQL goes through :func:`quote`, so a spec value
can never change what a query means, in Prometheus or in Grafana (which replaces
``$name``, ``${name}`` and ``[[name]]`` in a panel's query before Prometheus sees
it): ``$`` is written as the escape ``\\x24``. Dashboard variables that Grafana
should replace are marked :class:`Variable`.

Layout: set operators (``and``, ``or``, ``unless``) and binary operations marked
``multiline`` put the operator on a line of its own; a parenthesised expression
that spans lines is indented by two spaces. Everything else prints on one line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field, fields, replace

from obsgen.model.records import value
from obsgen.model.types import Duration

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "$": "\\x24"}
# What quote() must rewrite; most label values hold none of it and are copied as they are.
_NEEDS_ESCAPE = re.compile(r'[\\"$\x00-\x1f\x7f]|\[\[')


class Variable(str):
    """A Grafana dashboard variable (``$job``, ``$__rate_interval``): printed as is, for Grafana to replace."""


def quote(value: str) -> str:
    """A PromQL string literal (Go escaping rules) that means exactly ``value``, in Prometheus and Grafana."""
    if isinstance(value, Variable) or not _NEEDS_ESCAPE.search(value):
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


def number(x: float) -> str:
    """Shortest rendering of a threshold: 0.8, 180, 1e-05.

    15 significant digits: any number written in a spec with up to 15 digits comes out as written (the rule
    means the spec's number), while float noise in computed test values (7.499999999999998) is rounded away.
    """
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return format(x, ".15g")


# Words the PromQL lexer reads as keywords, operators or numbers: a metric of that name cannot be written bare
# (`on{a="b"}` is a parse error), only as `{__name__="on", a="b"}`. Generous on purpose: the long form is always valid.
KEYWORDS = frozenset((
    "and", "or", "unless", "atan2", "bool", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "start", "end", "inf", "nan", "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
    "topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio"))

Window = Duration | Variable


# ---------------------------------------------------------------------------------------------
# Nodes


class Expr:
    """A PromQL expression. Subclasses are frozen dataclasses; :func:`render` prints any of them."""

    def __str__(self) -> str:
        return render(self)


@value
class Matcher:
    """One label matcher of a selector: ``name op "value"``."""

    name: str
    value: str
    op: str = "="

    def text(self) -> str:
        return f"{self.name}{self.op}{quote(self.value)}"


@value
class Selector(Expr):
    """``metric{matchers}``. ``signal`` names the component signal it reads (not printed: for verify and docs)."""

    metric: str
    matchers: tuple[Matcher, ...] = ()
    signal: str | None = None

    @property
    def labels(self) -> dict[str, str]:
        """The equality matchers, as a mapping."""
        return {m.name: m.value for m in self.matchers if m.op == "="}

    def matching(self, name: str) -> Matcher | None:
        return next((m for m in self.matchers if m.name == name), None)

    def where(self, labels: Mapping[str, str] | None = None, regex: Mapping[str, str] | None = None) -> Selector:
        """This selector with more matchers; a label it already matches takes the new value in place."""
        return selector(self.metric, {**self.labels, **(labels or {})},
                        {**{m.name: m.value for m in self.matchers if m.op == "=~"}, **(regex or {})},
                        {m.name: m.value for m in self.matchers if m.op == "!~"}, signal=self.signal)


@value
class Range(Expr):
    """``expr[window]``: a range of a selector, or a subquery (``(expr)[window:step]``) of anything else."""

    expr: Expr
    window: Window
    step: Duration | None = None
    subquery: bool = False  # `x[1h:]` of a plain selector; any other expression is always a subquery


@value
class Offset(Expr):
    """``expr offset by``."""

    expr: Expr
    by: Duration


@value
class Num(Expr):
    """A number literal."""

    value: float


@value
class Seconds(Expr):
    """A duration as a number of seconds in arithmetic (``rate1h * 3600``, ``age / 259200``).

    Printed as a number, but scaled with the range windows by ``--time-scale``: arithmetic on the length of a
    window stays true to the scaled window.
    """

    duration: Duration


@value
class Str(Expr):
    """A string literal: a function's string argument."""

    value: str


@value
class Call(Expr):
    """A function call: ``fn(args...)``."""

    fn: str
    args: tuple[Expr, ...]


@value
class Agg(Expr):
    """``op by (labels) (expr)``; ``by=None`` aggregates everything away (``sum(x)``).

    ``multiline`` puts the argument on lines of its own, for nested aggregations.
    """

    op: str
    expr: Expr
    by: tuple[str, ...] | None = None
    without: bool = False
    param: Expr | None = None
    multiline: bool = False


@value
class Bin(Expr):
    """``lhs op rhs`` with vector matching; ``multiline`` puts the operator on its own line (ratios)."""

    op: str
    lhs: Expr
    rhs: Expr
    bool_: bool = False
    on: tuple[str, ...] | None = None
    ignoring: tuple[str, ...] | None = None
    group: tuple[str, tuple[str, ...]] | None = None  # ("left"|"right", labels)
    multiline: bool = False


@value
class Paren(Expr):
    """Parentheses the author wants kept, around ``expr``."""

    expr: Expr


@value
class Neg(Expr):
    """Unary minus: ``-expr``."""

    expr: Expr


# ---------------------------------------------------------------------------------------------
# Builders


def selector(metric: str, labels: Mapping[str, str] | None = None, regex: Mapping[str, str] | None = None,
             not_regex: Mapping[str, str] | None = None, *, signal: str | None = None) -> Selector:
    """Exact matchers in the order given, then regex, then negated regex ones."""
    matchers = tuple(Matcher(k, v) for k, v in (labels or {}).items())
    matchers += tuple(Matcher(k, v, "=~") for k, v in (regex or {}).items())
    matchers += tuple(Matcher(k, v, "!~") for k, v in (not_regex or {}).items())
    return Selector(metric, matchers, signal)


def num(x: float | Expr) -> Expr:
    return x if isinstance(x, Expr) else Num(float(x))


def call(fn: str, *args: Expr | float | str) -> Call:
    return Call(fn, tuple(Str(a) if isinstance(a, str) else num(a) for a in args))


def rate(expr: Expr, window: Window) -> Call:
    return Call("rate", (Range(expr, window),))


def increase(expr: Expr, window: Window) -> Call:
    return Call("increase", (Range(expr, window),))


def over_time(fn: str, expr: Expr, window: Window, step: Duration | None = None) -> Call:
    """``<fn>_over_time(expr[window])``; a subquery when ``expr`` is not a plain selector."""
    return Call(f"{fn}_over_time", (Range(expr, window, step),))


def agg(op: str, expr: Expr, by: Sequence[str] | None = None, *, param: Expr | float | None = None,
        multiline: bool = False) -> Agg:
    return Agg(op, expr, tuple(by) if by is not None else None, param=None if param is None else num(param),
               multiline=multiline)


def binop(op: str, lhs: Expr | float, rhs: Expr | float, *, bool_: bool = False, on: Sequence[str] | None = None,
          ignoring: Sequence[str] | None = None, group_left: Sequence[str] | None = None,
          multiline: bool = False) -> Bin:
    return Bin(op, num(lhs), num(rhs), bool_, tuple(on) if on is not None else None,
               tuple(ignoring) if ignoring is not None else None,
               ("left", tuple(group_left)) if group_left is not None else None, multiline)


def and_(*exprs: Expr, on: Sequence[str] | None = None) -> Expr:
    """``a and b and c`` (left-associative)."""
    out = exprs[0]
    for e in exprs[1:]:
        out = binop("and", out, e, on=on)
    return out


def or_(*exprs: Expr) -> Expr:
    out = exprs[0]
    for e in exprs[1:]:
        out = Bin("or", out, e)
    return out


def ratio(part: Expr, total: Expr) -> Bin:
    """``part / total`` with the operator on its own line, as recording rules show ratios."""
    return Bin("/", part, total, multiline=True)


# ---------------------------------------------------------------------------------------------
# Walking

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def children(node: Expr) -> tuple[Expr, ...]:
    names = _FIELD_NAMES.get(type(node))
    if names is None:  # dataclasses.fields() is slow, and the packer and renderers walk every rule many times
        names = _FIELD_NAMES[type(node)] = tuple(f.name for f in fields(node))
    out = tuple([v for name in names if isinstance(v := getattr(node, name), Expr)])
    return out + node.args if isinstance(node, Call) else out


class _ByIdentity:
    """A pure function of a node, remembered by the node's identity.

    A rule's expression is printed for its rule file, its component's test copy, the PrometheusRule and its
    runbook page (:data:`rule_text`), and walked by the promtool packer and the runbook pages again and again
    (:func:`walk`, :func:`selectors`). Nodes never change once built (``@value``: frozen where the test suite
    checks it), and the memo holds each node it answered for, so an id is never reused while remembered; a full
    memo is emptied, so a fleet's memory stays flat. Answers are shared: they must be immutable (strings, tuples).
    """

    SIZE = 1 << 10

    def __init__(self, fn: Callable[[Expr], object]):
        self.fn = fn
        self.memo: dict[int, tuple[Expr, object]] = {}

    def __call__(self, node: Expr):
        try:
            return self.memo[id(node)][1]
        except KeyError:
            if len(self.memo) >= self.SIZE:
                self.memo.clear()
            answer = self.fn(node)
            self.memo[id(node)] = (node, answer)
            return answer


def _walk(node: Expr) -> tuple[Expr, ...]:
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(reversed(children(n)))
    return tuple(out)


_walked = _ByIdentity(_walk)


def walk(node: Expr) -> tuple[Expr, ...]:
    """``node`` and every expression below it, depth first (a node before its children, left to right).

    Built with a stack, not nested generators, and remembered: the packer and renderers walk every rule many
    times."""
    return _walked(node)


def selectors(node: Expr) -> tuple[Selector, ...]:
    """Every selector in ``node``, in :func:`walk` order (remembered as the walk is)."""
    return _selected(node)


_selected = _ByIdentity(lambda node: tuple(n for n in walk(node) if isinstance(n, Selector)))


def windows(node: Expr) -> list[Duration]:
    """Every range window and offset in ``node`` (Grafana variables left out)."""
    out: list[Duration] = []
    for n in walk(node):
        if isinstance(n, Range) and isinstance(n.window, Duration):
            out.append(n.window)
        elif isinstance(n, Offset):
            out.append(n.by)
    return out


def transform(node: Expr, fn) -> Expr:
    """``node`` rebuilt bottom-up with ``fn`` applied to every sub-expression (``fn`` returns the new node)."""
    changes = {}
    for f in fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Expr):
            changes[f.name] = transform(value, fn)
        elif f.name == "args" and isinstance(node, Call):
            changes[f.name] = tuple(transform(a, fn) for a in value)
    return fn(replace(node, **changes) if changes else node)


# ---------------------------------------------------------------------------------------------
# Printing

# Binary operator precedence, lowest first (Prometheus' parser: or < and/unless < comparisons < +- < */% atan2 < ^).
_PRECEDENCE = {"or": 1, "and": 2, "unless": 2, "==": 3, "!=": 3, "<=": 3, "<": 3, ">=": 3, ">": 3,
               "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "atan2": 5, "^": 6}
_SET = ("and", "or", "unless")


@value
class Printer:
    """Writes expressions as text; ``scale`` divides every window, step and offset (``--time-scale``)."""

    scale: float = 1
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    def duration(self, d: Window) -> str:
        if isinstance(d, Variable) or self.scale == 1:
            return str(d)
        return str(scale_duration(d, self.scale))

    def __call__(self, node: Expr) -> str:
        kind = type(node)
        method = _PRINTERS.get(kind)
        if method is None:  # looked up once per node type: a build prints hundreds of thousands of nodes
            method = _PRINTERS[kind] = getattr(Printer, f"_{kind.__name__.lower()}")
        return method(self, node)

    def _selector(self, n: Selector) -> str:
        if n.metric.lower() in KEYWORDS or not n.metric:
            head = (Matcher("__name__", n.metric),) if n.metric else ()
            return "{" + ", ".join(m.text() for m in head + n.matchers) + "}"
        return n.metric + "{" + ", ".join(m.text() for m in n.matchers) + "}"

    def _range(self, n: Range) -> str:
        window = self.duration(n.window)
        if not (n.subquery or n.step is not None):
            if isinstance(n.expr, Selector):
                return f"{self(n.expr)}[{window}]"
            if isinstance(n.expr, Offset) and isinstance(n.expr.expr, Selector):  # x[5m] offset 1m
                return f"{self(n.expr.expr)}[{window}] offset {self.duration(n.expr.by)}"
        step = self.duration(n.step) if n.step is not None else ""
        inner = self(n.expr) if isinstance(n.expr, (Selector, Paren)) else self(Paren(n.expr))
        return f"{inner}[{window}:{step}]"

    def _offset(self, n: Offset) -> str:
        return f"{self(n.expr)} offset {self.duration(n.by)}"

    def _num(self, n: Num) -> str:
        v = n.value
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "+Inf" if v > 0 else "-Inf"
        return number(v)

    def _seconds(self, n: Seconds) -> str:
        d = n.duration if self.scale == 1 else scale_duration(n.duration, self.scale)
        return number(d.total_seconds)

    def _str(self, n: Str) -> str:
        return quote(n.value)

    def _call(self, n: Call) -> str:
        return f"{n.fn}({', '.join(self(a) for a in n.args)})"

    def _agg(self, n: Agg) -> str:
        grouping = ""
        if n.without:
            grouping = f" without ({', '.join(n.by or ())})"
        elif n.by:
            grouping = f" by ({', '.join(n.by)})"
        args = (f"{self(n.param)}, " if n.param is not None else "") + self(n.expr)
        if n.multiline:
            return f"{n.op}{grouping} (\n{_indent(args)}\n)"
        return f"{n.op}{grouping} ({args})" if grouping else f"{n.op}({args})"

    def _paren(self, n: Paren) -> str:
        inner = self(n.expr)
        return f"(\n{_indent(inner)}\n)" if "\n" in inner else f"({inner})"

    def _neg(self, n: Neg) -> str:
        inner = n.expr
        text = self(inner)
        return f"-({text})" if isinstance(inner, Bin) else f"-{text}"

    def _bin(self, n: Bin) -> str:
        prec = _PRECEDENCE[n.op]
        lhs = self._operand(n.lhs, prec, right=False, op=n.op)
        rhs = self._operand(n.rhs, prec, right=True, op=n.op)
        op = n.op + (" bool" if n.bool_ else "")
        if n.on is not None:
            op += f" on ({', '.join(n.on)})"
        elif n.ignoring is not None:
            op += f" ignoring ({', '.join(n.ignoring)})"
        if n.group:  # always with its (possibly empty) label list: `group_left (x)` would read x as the labels
            side, labels = n.group
            op += f" group_{side} ({', '.join(labels)})"
        if n.op in _SET or n.multiline:
            return f"{lhs}\n{op}\n{rhs}"
        return f"{lhs} {op} {rhs}"

    def _operand(self, node: Expr, prec: int, *, right: bool, op: str) -> str:
        """An operand, parenthesised where precedence (or ``^``'s right associativity) needs it."""
        if isinstance(node, Bin):
            inner = _PRECEDENCE[node.op]
            needs = inner < prec or (inner == prec and (right != (op == "^")))
            if needs:
                return self(Paren(node))
        return self(node)


_PRINTERS: dict[type, Callable[[Printer, Expr], str]] = {}
"""``Printer``'s method for each node type (``_selector`` for :class:`Selector`)."""


def _indent(text: str, by: str = "  ") -> str:
    return "\n".join(by + line if line else line for line in text.split("\n"))


PLAIN = Printer()
rule_text = _ByIdentity(PLAIN)
"""A rule's expression as unscaled PromQL text, remembered: printed for its rule file, its component's test copy,
the PrometheusRule and its runbook page."""


def render(node: Expr | str, scale: float = 1) -> str:
    """``node`` as PromQL text (``scale`` > 1: every window divided by it, see :func:`scale_duration`)."""
    if isinstance(node, str):
        return node
    return (PLAIN if scale == 1 else Printer(scale))(node)


def scale_duration(d: Duration, factor: float) -> Duration:
    """``d`` divided by ``factor``, in whole seconds, at least 1s; ``0s`` stays ``0s``."""
    if factor < 1:
        raise ValueError(f"time scale must be at least 1, got {factor}")
    if d.millis == 0:
        return d
    seconds = max(1, int(d.millis / factor / 1000 + 0.5))
    return Duration(seconds * 1000)


# ---------------------------------------------------------------------------------------------
# Reading PromQL written by people (custom signals): promql_parser's tree into these nodes.


def parse(text: str) -> Expr:
    """Parse PromQL (raises ValueError with the parser's message) into these nodes."""
    import promql_parser as p

    try:
        tree = p.parse(text)
    except Exception as exc:  # the Rust parser raises plain exceptions
        raise ValueError(str(exc)) from None
    return _convert(tree)


def _duration(td) -> Duration:
    return Duration(round(td.total_seconds() * 1000))


def _convert(n) -> Expr:  # noqa: C901 - one branch per node type of the parser
    import promql_parser as p

    if isinstance(n, p.VectorSelector):
        if n.at is not None:
            raise ValueError("the @ modifier is not supported")
        ops = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
        matchers = tuple(Matcher(m.name, m.value, ops[str(m.op)]) for m in n.matchers.matchers
                         if not (m.name == "__name__" and n.name))
        out: Expr = Selector(n.name or "", matchers)
        if n.offset is not None:
            out = Offset(out, _duration(n.offset))
        return out
    if isinstance(n, p.MatrixSelector):  # x[5m] offset 1m: the parser keeps the offset on the selector
        inner = _convert(n.vector_selector)
        if isinstance(inner, Offset):
            return Range(inner, _duration(n.range))
        return Range(inner, _duration(n.range))
    if isinstance(n, p.SubqueryExpr):
        step = _duration(n.step) if n.step is not None else None
        out = Range(_convert(n.expr), _duration(n.range), step, subquery=True)
        return Offset(out, _duration(n.offset)) if n.offset is not None else out
    if isinstance(n, p.NumberLiteral):
        return Num(n.val)
    if isinstance(n, p.StringLiteral):
        return Str(n.val)
    if isinstance(n, p.ParenExpr):
        return Paren(_convert(n.expr))
    if isinstance(n, p.UnaryExpr):
        return Neg(_convert(n.expr))
    if isinstance(n, p.Call):
        return Call(n.func.name, tuple(_convert(a) for a in n.args))
    if isinstance(n, p.AggregateExpr):
        by, without = None, False
        if n.modifier is not None:
            by = tuple(n.modifier.labels)
            without = n.modifier.type == p.AggModifierType.Without
        param = _convert(n.param) if n.param is not None else None
        return Agg(str(n.op), _convert(n.expr), by, without, param)
    if isinstance(n, p.BinaryExpr):
        m = n.modifier
        on = ignoring = group = None
        bool_ = False
        if m is not None:
            bool_ = bool(m.return_bool)
            if m.matching is not None:
                labels = tuple(m.matching.labels)
                if m.matching.type == p.LabelModifierType.Include:
                    on = labels
                else:
                    ignoring = labels
            if m.card in (p.VectorMatchCardinality.ManyToOne, p.VectorMatchCardinality.OneToMany):
                side = "left" if m.card == p.VectorMatchCardinality.ManyToOne else "right"
                group = (side, tuple(m.group_labels or ()))
        return Bin(str(n.op), _convert(n.lhs), _convert(n.rhs), bool_, on, ignoring, group)
    raise ValueError(f"unsupported PromQL node {type(n).__name__}")


# ---------------------------------------------------------------------------------------------
# One query for many components


def union(exprs: Sequence[Expr]) -> Expr:
    """One query that covers every expression of ``exprs``, which have one shape (:func:`same_shape` of the
    first and each other one: the caller grouped them so, and is not asked again).

    Expressions that differ only in the values of equality matchers (the same
    query for caches ``a`` and ``b``) become one with ``=~"a|b"`` in those places,
    so a runbook shows one query over every component that fired instead of one
    per component.
    """
    first, rest = exprs[0], exprs[1:]
    return _merge(first, list(rest)) if rest else first


def same_shape(a: Expr, b: Expr) -> bool:
    """Whether ``a`` and ``b`` are the same expression but for the values of equality matchers (and signals):
    whether :func:`union` can merge them."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Selector):
        return a.metric == b.metric and len(a.matchers) == len(b.matchers) and all(  # type: ignore[attr-defined]
            x.name == y.name and x.op == y.op and (x.op == "=" or x.value == y.value)
            for x, y in zip(a.matchers, b.matchers))  # type: ignore[attr-defined]
    call = isinstance(a, Call)
    for name in _FIELD_NAMES.get(type(a)) or tuple(f.name for f in fields(a)):
        x, y = getattr(a, name), getattr(b, name)
        if call and name == "args":
            if len(x) != len(y) or not all(same_shape(p, q) for p, q in zip(x, y)):
                return False
        elif isinstance(x, Expr) and isinstance(y, Expr):
            if not same_shape(x, y):
                return False
        elif x != y:
            return False
    return True


def _merge(first: Expr, rest: list[Expr]) -> Expr:
    nodes = [list(walk(e)) for e in [first, *rest]]
    values: dict[tuple[int, int], list[str]] = {}
    for per_expr in nodes:
        for i, n in enumerate(per_expr):
            if isinstance(n, Selector):
                for j, m in enumerate(n.matchers):
                    if m.op == "=":
                        bucket = values.setdefault((i, j), [])
                        if m.value not in bucket:
                            bucket.append(m.value)
    index_of = {id(n): i for i, n in enumerate(nodes[0])}

    def widen(n: Expr) -> Expr:
        i = index_of.get(id(n))
        if i is None or not isinstance(n, Selector):
            return n
        matchers = []
        for j, m in enumerate(n.matchers):
            seen = values.get((i, j), [m.value])
            if m.op == "=" and len(seen) > 1:
                matchers.append(Matcher(m.name, "|".join(regex_quote(v) for v in seen), "=~"))
            else:
                matchers.append(m)
        return replace(n, matchers=tuple(matchers))

    return _rebuild(first, widen)


def _rebuild(node: Expr, fn) -> Expr:
    """Like :func:`transform`, but ``fn`` sees the original nodes (so their identity can be looked up)."""
    changes = {}
    for f in fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Expr):
            changes[f.name] = _rebuild(value, fn)
        elif f.name == "args" and isinstance(node, Call):
            changes[f.name] = tuple(_rebuild(a, fn) for a in value)
    out = fn(node)
    return replace(out, **changes) if changes else out
