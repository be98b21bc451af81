"""Per-environment values: ``environments:`` overlays only the keys that differ, once per environment.

    environments:
      production:
        db_pools:
          - name: main          # the component to change, addressed by its name
            pool_size: 20

Each environment is the spec with its overlay merged in: mappings merge key by key; any other value (a
number, a text, a list inside a component) replaces the spec's. A top-level list of components
(``db_pools``, ``caches``, ...) is addressed entry by entry by ``name``: an overlay changes components the
spec defines and can neither add nor remove one (so every environment watches the same machinery).
``apiVersion`` and ``service.name`` are the same everywhere: the service names the output folder, and
each environment gets its own folder under it (docs/outputs.md, "Environments").

Each merged spec is then checked like a spec of its own. A problem in a value the overlay wrote is
reported where the overlay wrote it, with the path as the overlay addresses it
(``environments.production.db_pools[main].pool_size``); a problem the merge causes in a value the
spec wrote keeps the spec's place and says which environment's values cause it.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace

from obsgen.errors import Named, Path, Problem, closest, printable
from obsgen.spec.source import Source

KEY = "environments"
# A folder name on every file system: like a service name (spec/schema.json).
NAME = re.compile(r"(?!(con|prn|aux|nul|com[0-9]|lpt[0-9])$)[a-z][a-z0-9-]{0,62}")
NAME_EXPECTED = ("an environment name: lowercase letters, digits and '-', starting with a letter, at most 63 "
                 "characters, not a reserved device name (con, prn, aux, nul, com1, lpt1, …)")


@dataclass
class Environment:
    """One environment: the merged spec as a :class:`Source`, and where the overlay wrote each value."""

    name: str
    source: Source
    written: dict[Path, Path] = field(default_factory=dict)
    """Merged path → the path as the overlay addresses it, for every value the overlay wrote whole."""

    def relocate(self, problem: Problem) -> Problem:
        """``problem`` of the merged spec, as the author must read it: at the overlay's path when the value is the
        overlay's (its position already is), else at the spec's, naming the environment."""
        path = problem.path
        for n in range(len(path), 0, -1):
            if path[:n] in self.written:
                return replace(problem, path=self.written[path[:n]] + path[n:])
        return replace(problem, message=f"{problem.message} (with the values of environment `{self.name}`)")


def split(source: Source, kinds: tuple[str, ...]) -> tuple[list[Environment], list[Problem]]:
    """Take ``environments:`` out of ``source.data`` (the spec itself is checked without it) and merge each
    overlay into its own copy of the spec; the problems of the overlays' shape.

    ``kinds`` are the top-level keys holding lists of components (addressed by ``name``).
    """
    data = source.data
    if not isinstance(data, dict) or KEY not in data:
        return [], []
    overlays = data.pop(KEY)
    at: Path = (KEY,)
    if not isinstance(overlays, dict) or not overlays:
        return [], [source.problem(at, "expected a mapping of environment names to the keys that differ there, "
                                       "e.g. `production: {db_pools: [{name: main, pool_size: 20}]}`; found "
                                       + ("an empty mapping" if isinstance(overlays, dict) else _kind(overlays)))]
    environments, problems = [], []
    for name, overlay in overlays.items():
        if not NAME.fullmatch(name):
            problems.append(source.problem(at + (name,), f"expected {NAME_EXPECTED} as key, found "
                                                         f"`{printable(name)}`", key=True))
            continue
        if not isinstance(overlay, dict):
            problems.append(source.problem(at + (name,), f"expected a mapping of the keys that differ in `{name}` "
                                                         f"(`{{}}` when none do), found {_kind(overlay)}"))
            continue
        merge = _Merge(source, name)
        problems += merge.overlay(overlay, kinds)
        environments.append(merge.environment)
    return environments, problems


def _kind(value: object) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(type(value), f"`{printable(str(value))}`")


class _Merge:
    """One environment's copy of the spec, its overlay merged in, positions following the values."""

    def __init__(self, source: Source, name: str):
        self.source = source
        self.name = name
        self.at: Path = (KEY, name)
        outside = {k: v for k, v in source.positions.items() if k[:1] != (KEY,)}
        merged = Source(source.file, copy.deepcopy(source.data), outside,
                        {k: v for k, v in source.key_positions.items() if k[:1] != (KEY,)},
                        {k: v for k, v in source.texts.items() if k[:1] != (KEY,)})
        self.environment = Environment(name, merged)

    def overlay(self, overlay: dict, kinds: tuple[str, ...]) -> list[Problem]:
        data = self.environment.source.data
        assert isinstance(data, dict)
        problems = []
        for key, value in overlay.items():
            written: Path = self.at + (key,)
            if key == "service":
                if not isinstance(value, dict):
                    problems.append(self.source.problem(written, f"expected a mapping of the service keys that "
                                                                 f"differ in `{self.name}`, found {_kind(value)}"))
                elif "name" in value:
                    problems.append(self.source.problem(written + ("name",), (
                        f"`service.name` is the same in every environment (it names the output folder "
                        f"<service>/{self.name}/); remove it here"), key=True))
                elif isinstance(data.get("service"), dict):
                    self.mapping(("service",), written, written, value)
            elif key in kinds:
                problems += self.components(key, value, data.get(key))
            else:
                problems.append(self.source.problem(written, _unknown(key, kinds), key=True))
        return problems

    def components(self, key: str, value: object, base: object) -> list[Problem]:
        written: Path = self.at + (key,)
        if not isinstance(value, list):
            return [self.source.problem(written, (
                f"expected a list of the `{key}` entries that differ in `{self.name}`, each naming its component "
                f"(`- name: ...`), found {_kind(value)}"))]
        names = [item.get("name") if isinstance(item, dict) else None for item in base or ()] \
            if isinstance(base, list) else []
        known = ", ".join(f"`{n}`" for n in names if isinstance(n, str)) or "none"
        problems, seen = [], set()
        for j, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str):
                problems.append(self.source.problem(written + (j,), (
                    f"expected `name:` naming the `{key}` entry this changes (the spec has {known}), found "
                    + ("no name" if isinstance(item, dict) else _kind(item)))))
            elif name in seen:
                problems.append(self.source.problem(written + (j, "name"), (
                    f"`{printable(name)}` is changed twice in `{self.name}`; merge the two entries")))
            elif name not in names:
                problems.append(self.source.problem(written + (j, "name"), (
                    f"the spec has no `{key}` entry named `{printable(name)}` (it has {known}); an environment "
                    f"changes the spec's components and cannot add one: add it to `{key}` itself, or fix the name")))
            else:
                seen.add(name)
                self.mapping((key, names.index(name)), written + (j,), written[:-1] + (key, Named(name)), item)
        return problems

    def mapping(self, merged: Path, written: Path, shown: Path, overlay: dict) -> None:
        """Merge ``overlay`` (at ``written`` in the document) into the mapping at ``merged``."""
        target = self._value(merged)
        for key, value in overlay.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                self.mapping(merged + (key,), written + (key,), shown + (key,), value)
            elif key == "name" and len(merged) == 2 and isinstance(merged[1], int):
                continue  # the entry's address, equal to the spec's
            else:
                self.put(merged + (key,), written + (key,), shown + (key,), value)

    def put(self, merged: Path, written: Path, shown: Path, value: object) -> None:
        """``value`` replaces whatever the spec had at ``merged``; positions and texts follow."""
        self._value(merged[:-1])[merged[-1]] = copy.deepcopy(value)
        src, out = self.source, self.environment.source
        for table, into in ((src.positions, out.positions), (src.texts, out.texts)):
            for path in [p for p in into if p[:len(merged)] == merged]:
                del into[path]
            into.update({merged + p[len(written):]: v for p, v in table.items() if p[:len(written)] == written})
        for path in [p for p in out.key_positions if p[:len(merged)] == merged]:
            del out.key_positions[path]
        out.key_positions.update({merged + p[len(written):]: v for p, v in src.key_positions.items()
                                  if p[:len(written)] == written})
        self.environment.written[merged] = shown

    def _value(self, path: Path) -> dict:
        node = self.environment.source.data
        for part in path:
            node = node[part]  # type: ignore[index]
        return node  # type: ignore[return-value]


def _unknown(key: str, kinds: tuple[str, ...]) -> str:
    if key == "apiVersion":
        return "`apiVersion` is the same in every environment; remove it here"
    if key == KEY:
        return "environments do not nest; write the keys that differ directly under the environment"
    known = ("service",) + kinds
    close = closest(key, known)
    hint = f"did you mean `{close}`?" if close else "an environment changes `service` or the components: " + \
        ", ".join(f"`{k}`" for k in known)
    return f"unknown key `{printable(key)}`; {hint}"
