"""The one place that touches the output directory: plan, check, write, prune.

obsgen owns exactly the files listed in each service's manifest
(``<service>/.obsgen-manifest.json``). A rebuild rewrites those, removes the ones
it no longer produces, and refuses to overwrite a file it did not write. Writes
go in two phases (every new file to a temporary sibling, then renames), so a
failure while writing leaves the previous files in place.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from obsgen.errors import UsageError

MANIFEST = ".obsgen-manifest.json"


@dataclass(frozen=True)
class Output:
    """One generated file. ``merge(existing, generated)`` keeps hand edits (runbooks)."""

    path: str
    content: str
    merge: Callable[[str, str], str] | None = None


@dataclass
class Plan:
    root: Path
    writes: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    old: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not (self.changed or self.missing or self.orphaned)

    def diff(self) -> str:
        out = []
        for path in self.changed:
            out += difflib.unified_diff(self.old[path].splitlines(True), self.writes[path].splitlines(True),
                                        f"a/{path}", f"b/{path}")
        return "".join(out)


def _manifest_path(service: str) -> str:
    return f"{service}/{MANIFEST}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc}); move it away") from None


def owned(root: Path, service: str) -> list[str]:
    text = _read(root / _manifest_path(service))
    if text is None:
        return []
    try:
        files = json.loads(text)["files"]
    except (ValueError, KeyError, TypeError):
        return []
    return [f for f in files if isinstance(f, str) and _inside(f) and _unsafe(root, f) is None]


def _inside(rel: str) -> bool:
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts


# Names Windows gives to devices, in any case and with any extension (CON, nul.txt).
_RESERVED = {"con", "prn", "aux", "nul", *(f"{p}{i}" for p in ("com", "lpt") for i in range(10))}


def _unsafe(root: Path, rel: str) -> str | None:
    """Why obsgen must not write ``rel`` under ``root``, if it must not.

    The spec's schema already keeps service names to ``[a-z0-9-]``; this is the
    last line of defence, at the one place that touches the disk.
    """
    parts = rel.split("/")
    if rel.startswith("/") or "\\" in rel or "\0" in rel or ":" in rel:
        return "it is not a plain relative path"
    if any(p in ("", ".", "..") or p != p.rstrip(". ") for p in parts):
        return "it has an empty, '.' or '..' part, or a part ending in a dot or space"
    if any(p.split(".")[0].lower() in _RESERVED for p in parts):
        return "it uses a name Windows reserves for devices"
    target, base = (root / rel).resolve(), root.resolve()
    if not target.is_relative_to(base):
        return f"it resolves to {target}, outside {base} (a symbolic link?)"
    return None


def _check_paths(root: Path, paths: list[str]) -> None:
    seen: dict[str, str] = {}
    for rel in paths:
        why = _unsafe(root, rel)
        if why:
            raise UsageError(f"refusing to write {root / rel}: {why}")
        other = seen.setdefault(rel.casefold(), rel)
        if other != rel:
            raise UsageError(f"refusing to write both {root / other} and {root / rel}: they are one file on a "
                             "case-insensitive file system")


def plan(root: Path, services: dict[str, list[Output]]) -> Plan:
    """Compare what the specs produce with what is on disk, service by service."""
    result = Plan(root)
    _check_paths(root, [out.path for outputs in services.values() for out in outputs]
                 + [_manifest_path(service) for service in services])
    for service, outputs in sorted(services.items()):
        before = set(owned(root, service))
        produced = {}
        for out in outputs:
            existing = _read(root / out.path)
            try:
                content = out.merge(existing, out.content) if (out.merge and existing is not None) else out.content
            except ValueError as exc:
                raise UsageError(f"{root / out.path}: cannot keep your edits ({exc}); fix the marker "
                                 "comments or move the file away") from None
            produced[out.path] = content
            if existing is None:
                result.missing.append(out.path)
            elif existing != content:
                if out.path not in before:
                    result.conflicts.append(out.path)
                result.changed.append(out.path)
                result.old[out.path] = existing
        manifest = json.dumps({"generator": "obsgen", "files": sorted(produced)}, indent=2) + "\n"
        produced[_manifest_path(service)] = manifest
        existing_manifest = _read(root / _manifest_path(service))
        if existing_manifest is None:
            result.missing.append(_manifest_path(service))
        elif existing_manifest != manifest:
            result.changed.append(_manifest_path(service))
            result.old[_manifest_path(service)] = existing_manifest
        result.writes.update(produced)
        result.orphaned += sorted(f for f in before - set(produced) if (root / f).exists())
    return result


def apply(p: Plan) -> None:
    """Write the plan: every file to a temporary sibling first, then rename, then prune."""
    pending = [path for path in sorted(p.writes) if path in p.changed or path in p.missing]
    temps: list[tuple[Path, Path]] = []
    try:
        for rel in pending:
            target = p.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".obsgen-tmp-{target.name}")
            tmp.write_text(p.writes[rel], "utf-8")
            temps.append((tmp, target))
    except BaseException as exc:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {exc.filename or p.root}: {exc.strerror or exc}; nothing was "
                             "changed") from None
        raise
    for tmp, target in temps:
        os.replace(tmp, target)
    for rel in p.orphaned:
        path = p.root / rel
        path.unlink(missing_ok=True)
        for parent in path.parents:
            if parent == p.root or not parent.is_relative_to(p.root) or any(parent.iterdir()):
                break
            parent.rmdir()
