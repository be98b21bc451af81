"""Which Alertmanager receiver an alert reaches, by walking a service's generated route tree.

A service's ``alertmanager/routes.yaml`` holds the routes the platform pastes under its root route. Matching
follows Alertmanager: a route matches when all its matchers do (a missing label is the empty string),
children are tried in order and the first match wins unless it says ``continue: true``, and a route no child
takes sends the alert to its own receiver, inherited from its parent. The root route belongs to the platform,
so an alert no route of the service takes "falls to the default receiver" (``None`` here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"\s]*))\s*')
_ESCAPE = re.compile(r'\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)')
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unescape(text: str) -> str:
    def one(m: re.Match) -> str:
        s = m.group(1)
        if s[0] in "xuU" and len(s) > 1:
            return chr(int(s[1:], 16))
        return _SIMPLE_ESCAPES.get(s, s)

    return _ESCAPE.sub(one, text)


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``severity="critical"``, ``alertname=~"A|B"`` (Alertmanager's matcher syntax); ValueError if not one."""
        m = _MATCHER.fullmatch(text)
        if m is None:
            raise ValueError(f"not an Alertmanager matcher: {text!r}")
        value = _unescape(m.group(3)) if m.group(3) is not None else m.group(4)
        return cls(m.group(1), m.group(2), value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op in ("=", "!="):
            return (have == self.value) == (self.op == "=")
        try:
            found = re.fullmatch(self.value, have) is not None
        except re.error:
            found = False
        return found == (self.op == "=~")

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


@dataclass(frozen=True)
class Route:
    matchers: tuple[Matcher, ...]
    receiver: str | None
    proceed: bool  # Alertmanager's `continue`
    routes: tuple[Route, ...]

    @classmethod
    def parse(cls, data: Mapping) -> Route:
        """A route as Alertmanager's configuration writes it (``matchers``, or the older ``match``/``match_re``)."""
        if not isinstance(data, Mapping):
            raise ValueError("a route is a mapping")
        matchers = [Matcher.parse(text) for text in data.get("matchers") or ()]
        matchers += [Matcher(k, "=", str(v)) for k, v in (data.get("match") or {}).items()]
        matchers += [Matcher(k, "=~", str(v)) for k, v in (data.get("match_re") or {}).items()]
        return cls(tuple(matchers), data.get("receiver"), bool(data.get("continue", False)),
                   tuple(cls.parse(child) for child in data.get("routes") or ()))


def receivers(routes: Sequence[Route], labels: Mapping[str, str]) -> tuple[str | None, ...]:
    """The receivers an alert with ``labels`` reaches when ``routes`` hang under the platform's root route."""
    return _walk(Route((), None, False, tuple(routes)), labels, None) or (None,)


def _walk(route: Route, labels: Mapping[str, str], inherited: str | None) -> tuple[str | None, ...]:
    if not all(m.matches(labels) for m in route.matchers):
        return ()
    receiver = route.receiver if route.receiver is not None else inherited
    found: list[str | None] = []
    for child in route.routes:
        got = _walk(child, labels, receiver)
        if got:
            found += got
            if not child.proceed:
                break
    return tuple(dict.fromkeys(found)) if found else (receiver,)
