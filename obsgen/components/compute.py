"""One component computed: its kind's rules and panels, each called exactly once, as a ComponentModel.

Loading a spec (:func:`obsgen.spec.parse`) computes every sound component this way, so that the problems only
the computed rules reveal are reported with the others, and the pipeline reuses the result: nothing is built
twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields, is_dataclass, replace

from obsgen.components import service
from obsgen.components.base import Built, Component, Rule
from obsgen.model.promql import Expr
from obsgen.model.rules import Alert
from obsgen.model.service import ComponentModel


def origins(c: Component) -> dict[str, str | None]:
    """Who publishes each metric the component reads: the profile's library, or the application (``None``)."""
    out: dict[str, str | None] = {}
    defaults = c.kind.defaults(c.service.profile)
    for signal in sorted(set(defaults) | set(c.spec.metrics)):
        if not c.has_metric(signal):
            continue
        ref, default = c.metric(signal), defaults.get(signal)
        out.setdefault(ref.name, default.origin if default is not None and default.name == ref.name else None)
    return {**c.kind.published, **out}


def presence(c: Component) -> str | None:
    """The signal whose absence means the component's metrics are missing, if obsgen can know it exists from
    start-up: only the library names a profile gives are known to; a spec that names its own metrics leaves the
    check to `obsgen verify`."""
    signal = c.kind.presence_signal(c.service.profile)
    return signal if signal and not c.spec.metrics and c.has_metric(signal) and c.kind.exported(c.spec) else None


def watched(components: Sequence[Component]) -> tuple[tuple[Component, str], ...]:
    """The service's components with a presence signal, and that signal."""
    return tuple((c, s) for c in components if (s := presence(c)))


def _exprs_mapped(value, fn: Callable[[Expr], Expr]):
    """``value`` (a rule, a panel, tuples and dicts of them) with ``fn`` applied to every expression in it."""
    if isinstance(value, Expr):
        return fn(value)
    if isinstance(value, tuple):
        mapped = tuple(_exprs_mapped(v, fn) for v in value)
        return value if all(a is b for a, b in zip(mapped, value)) else mapped
    if isinstance(value, dict):
        items = {k: _exprs_mapped(v, fn) for k, v in value.items()}
        return value if all(items[k] is v for k, v in value.items()) else items
    if is_dataclass(value) and not isinstance(value, type):  # unchanged objects stay themselves (AlertDef identity)
        changes = {f.name: new for f in fields(value)
                   if (new := _exprs_mapped(old := getattr(value, f.name), fn)) is not old}
        return replace(value, **changes) if changes else value
    return value


def _relabelled(c: Component, rule: Rule) -> Rule:
    """``rule`` keeping the component's identity (:meth:`Component.keep_identity`); an alert's diagnostic
    queries group by each metric's own label, as a person reads them."""
    rule = replace(rule, expr=c.keep_identity(rule.expr))
    if isinstance(rule, Alert) and rule.queries:
        rule = replace(rule, queries=tuple((k, c.keep_identity(q, own_label=True)) for k, q in rule.queries))
    return rule


def _panels(c: Component, built: Built):
    panels = c.kind.panels(c, built)
    return _exprs_mapped(panels, c.keep_identity) if c.renames_identity else panels


def component_model(c: Component, siblings: Sequence[tuple[Component, str]] = ()
                    ) -> tuple[ComponentModel, tuple[Alert, ...]]:
    """One component's rules and panels (panels read the alerts as built), and every alert it offers, those the
    spec disabled included (to check the spec's tuning against). ``siblings`` are the service's components with a
    presence signal (:func:`watched`): the proof of this one's ``ComponentMetricsMissing`` shows theirs present.

    Raises :class:`~obsgen.components.base.OwnMatcher` when the spec pins a label the kind matches itself.
    """
    offered: Sequence = tuple(c.kind.rules(c))
    if c.renames_identity:
        offered = tuple(_relabelled(c, r) for r in offered)
    signal = presence(c)
    if signal:
        blinds = tuple(dict.fromkeys(r.name for r in offered if isinstance(r, Alert) and r.enabled))
        others = tuple((o, s) for o, s in siblings if o is not c)
        offered = (*offered, *service.metrics_missing(c, signal, blinds, others))
    rules = tuple(r for r in offered if not isinstance(r, Alert) or r.enabled)
    built = Built(tuple(r for r in rules if isinstance(r, Alert)))
    model = ComponentModel(
        name=c.name, kind=c.kind.key, kind_title=c.kind.title, spec=c.spec, concern=c.kind.concern, rules=rules,
        panels=_panels(c, built), inhibitions=c.kind.inhibitions, rules_file=c.kind.rules_file,
        test_step=c.kind.test_step, origins=origins(c))
    return model, tuple(r for r in offered if isinstance(r, Alert))
