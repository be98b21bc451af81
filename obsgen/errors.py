"""User-facing errors.

Every mistake a user can make is reported as a :class:`Problem`: where it is
(``file:line:col``), which field (``caches[2].hit_rate_min``) and what to do.
The CLI prints problems and exits 2; it never shows a traceback for them.

A problem is always exactly one line: user text quoted in a message (an
unknown key, a value found) goes through :func:`printable`, so a newline, a
terminal escape or a bidi override in a spec cannot forge or hide lines of
the report.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence

from obsgen.model.records import value

Path = tuple[str | int, ...]


class Named(str):
    """A list entry addressed by its ``name`` rather than its index: ``db_pools[main]`` in a field path
    (environment overlays name the component they change, see obsgen/spec/environments.py)."""

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _unprintable(ch: str) -> bool:
    """Control, format (bidi overrides, zero-width), separator and surrogate characters."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def printable(text: str) -> str:
    """``text`` as is when every character is visible, else escaped the way JSON does (``\\n``, ``\\u202e``)."""
    if not any(_unprintable(ch) for ch in text):
        return text
    return "".join(json.dumps(ch)[1:-1] if _unprintable(ch) else ch for ch in text)


def closest(word: str, known: Sequence[str]) -> str | None:
    """The one of ``known`` that ``word`` most likely misspells (difflib's pick), for a "did you mean" hint.

    difflib is imported here: every run loads this module, and only a spec with a mistake needs it."""
    import difflib

    close = difflib.get_close_matches(word, known, n=1)
    return close[0] if close else None


def format_path(path: Path) -> str:
    """Render a field path the way users write it: ``caches[2].hit_rate_min``.

    A key that is not a plain word (a label name with a space, a dot or a quote)
    is written as ``["key"]`` so the path stays unambiguous.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, Named):
            out += f"[{printable(part)}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += "[" + printable(json.dumps(part, ensure_ascii=False)) + "]"
    return out or "(top level)"


@value
class Problem:
    """One thing wrong with a spec, where it is (line and column, and the path of keys) and what to do."""

    file: str
    line: int
    column: int
    path: Path
    message: str

    def __str__(self) -> str:
        return (f"{printable(self.file)}:{self.line}:{self.column}: {format_path(self.path)}: "
                f"{printable(self.message)}")

    def sort_key(self) -> tuple:
        """Position first, then the path as written (paths mix indexes and keys, so not the tuple)."""
        return (self.file, self.line, self.column, format_path(self.path), self.message)


class SpecError(Exception):
    """One or more problems in the user's input; the build stops with exit code 2."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems), key=Problem.sort_key)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(Exception):
    """A mistake in how obsgen was called (paths, options), reported without a location."""
