"""User-facing errors.

Every mistake a user can make is reported as a :class:`Problem`: where it is
(``file:line:col``), which field (``caches[2].hit_rate_min``) and what to do.
The CLI prints problems and exits 2; it never shows a traceback for them.
"""

from __future__ import annotations

from dataclasses import dataclass

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """Render a field path the way users write it: ``caches[2].hit_rate_min``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    column: int
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {format_path(self.path)}: {self.message}"


class SpecError(Exception):
    """One or more problems in the user's input; the build stops with exit code 2."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(Exception):
    """A mistake in how obsgen was called (paths, options), reported without a location."""
