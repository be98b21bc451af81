"""The one place that touches the output directory: plan, check, stage, commit, prune.

obsgen owns exactly the files listed in each service's manifest
(``<service>/.obsgen-manifest.json``). A rebuild rewrites those, removes the ones
it no longer produces, and refuses to overwrite a file it did not write.

Writes are all or nothing, across every service of a build: new contents are
first written to a staging directory inside the output directory
(``.obsgen-staging-<pid>/``), and only when everything is staged does a
:class:`Transaction` move them into place, keeping the previous files as hard
links (or copies) in the staging directory. Any failure or Ctrl-C while moving
undoes every step, so the output directory is left byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from obsgen.errors import UsageError
from obsgen.model.records import record

MANIFEST = ".obsgen-manifest.json"
STAGING_PREFIX = ".obsgen-staging-"


@record
class Output:
    """One generated file. ``merge(existing, generated)`` keeps hand edits (runbooks)."""

    path: str
    content: str
    merge: Callable[[str, str], str] | None = None


@dataclass(eq=False, repr=False)
class Plan:
    """What a build would change under ``root``, for one service or many.

    ``writes`` holds the content of every produced file (or only of changed ones
    once :meth:`light` dropped the rest); ``hashes`` the digest of every produced
    file as it will be on disk, manifest included.
    """

    root: Path
    writes: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    old: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not (self.changed or self.missing or self.orphaned)

    @property
    def pending(self) -> list[str]:
        """Files to (re)write, sorted."""
        return sorted(self.changed + self.missing)

    def diff(self) -> str:
        import difflib

        out = []
        for path in self.changed:
            out += difflib.unified_diff(self.old[path].splitlines(True), self.writes[path].splitlines(True),
                                        f"a/{path}", f"b/{path}")
        return "".join(out)

    def light(self, *, keep_diff: bool) -> Plan:
        """A copy without file contents (cheap to send between processes); ``keep_diff`` keeps
        what :meth:`diff` needs."""
        keep = set(self.changed) if keep_diff else set()
        return Plan(self.root, {p: t for p, t in self.writes.items() if p in keep}, list(self.changed),
                    list(self.missing), list(self.orphaned), list(self.conflicts),
                    {p: t for p, t in self.old.items() if p in keep}, dict(self.hashes))

    def extend(self, other: Plan) -> None:
        self.writes.update(other.writes)
        self.changed += other.changed
        self.missing += other.missing
        self.orphaned += other.orphaned
        self.conflicts += other.conflicts
        self.old.update(other.old)
        self.hashes.update(other.hashes)


def hasher():
    """The hash of obsgen's change detection (file digests, spec and code fingerprints): not a security boundary.
    SHA-1 runs on the CPU's SHA instructions where it has them: twice blake2b's speed here, and a no-change
    build of a fleet digests every file it wrote (about 1 GB for 1000 specs)."""
    return hashlib.sha1(usedforsecurity=False)


def digest(data: bytes) -> str:
    """Content digest recorded for generated files (:func:`hasher`)."""
    h = hasher()
    h.update(data)
    return h.hexdigest()


def manifest_path(service: str) -> str:
    return f"{service}/{MANIFEST}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc}); move it away") from None


def read_manifest(root: Path, service: str) -> dict:
    """The service's manifest as data; ``{}`` when absent or unreadable."""
    text = _read(root / manifest_path(service))
    try:
        data = json.loads(text) if text is not None else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def owned(root: Path, service: str) -> list[str]:
    files = read_manifest(root, service).get("files")
    if not isinstance(files, list):
        return []
    resolved = _Resolved(root)
    return [f for f in files if isinstance(f, str) and f.startswith(f"{service}/") and _inside(f)
            and _unsafe(f, resolved) is None]


def _inside(rel: str) -> bool:
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts


# Names Windows gives to devices, in any case and with any extension (CON, nul.txt).
_RESERVED = {"con", "prn", "aux", "nul", *(f"{p}{i}" for p in ("com", "lpt") for i in range(10))}


class _Resolved:
    """Where a path under ``root`` leads once symbolic links are followed, as :meth:`Path.resolve` says.

    Resolving walks every part of a path; a service's files share a handful of directories, so each directory
    is resolved once and a file only checked for being a link itself (the same answer: a path's real location
    is its real directory's entry, followed if that is a link).
    """

    def __init__(self, root: Path):
        self.root = root
        self.base = root.resolve()
        self._dirs: dict[str, str] = {}

    def __call__(self, rel: str) -> Path:
        head, _, name = rel.rpartition("/")
        directory = self._dirs.get(head)
        if directory is None:
            directory = self._dirs[head] = str((self.root / head).resolve())
        target = os.path.join(directory, name)
        return Path(target).resolve() if os.path.islink(target) else Path(target)


def _unsafe(rel: str, resolved: _Resolved) -> str | None:
    """Why obsgen must not write ``rel`` under ``resolved.root``, if it must not.

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
    target, base = resolved(rel), resolved.base
    if not target.is_relative_to(base):
        return f"it resolves to {target}, outside {base} (a symbolic link?)"
    return None


def _check_paths(root: Path, paths: list[str]) -> None:
    seen: dict[str, str] = {}
    resolved = _Resolved(root)
    for rel in paths:
        why = _unsafe(rel, resolved)
        if why:
            raise UsageError(f"refusing to write {root / rel}: {why}")
        other = seen.setdefault(rel.casefold(), rel)
        if other != rel:
            raise UsageError(f"refusing to write both {root / other} and {root / rel}: they are one file on a "
                             "case-insensitive file system")


def manifest_text(files: Iterable[str], spec: str | None = None, environments: Iterable[str] = ()) -> str:
    """The manifest: the files obsgen owns, the spec they come from (relative to the output
    directory) so that removing the spec prunes them, and the spec's environments when it has
    some (each a folder ``<service>/<environment>/`` holding one complete output set)."""
    data: dict = {"generator": "obsgen", "files": sorted(files)}
    if spec is not None:
        data["spec"] = spec
    if environments:
        data["environments"] = list(environments)
    return json.dumps(data, indent=2) + "\n"


class _AbsentDirs:
    """Whether the directory of a path under ``root`` is not there (so neither is the file): a cold build then
    tries no read per file. Each directory is asked once; any other answer than "no such file" (a file in the
    way) leaves the file to :func:`_read`, which says what is wrong."""

    def __init__(self, root: Path):
        self.root = root
        self._answers: dict[str, bool] = {}

    def __call__(self, rel: str) -> bool:
        head = rel.rpartition("/")[0]
        answer = self._answers.get(head)
        if answer is None:
            try:
                os.lstat(self.root / head)
                answer = False
            except FileNotFoundError:  # what reading the file would raise too
                answer = True
            except OSError:
                answer = False
            self._answers[head] = answer
        return answer


def plan_service(root: Path, service: str, outputs: list[Output], *, spec: str | None = None,
                 environments: Iterable[str] = ()) -> Plan:
    """Compare what one service's spec produces with what is on disk."""
    result = Plan(root)
    _check_paths(root, [out.path for out in outputs] + [manifest_path(service)])
    before = set(owned(root, service))
    produced: dict[str, str] = {}
    absent = _AbsentDirs(root)
    for out in outputs:
        existing = None if absent(out.path) else _read(root / out.path)
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
    manifest = manifest_text(produced, spec, environments)
    mpath = manifest_path(service)
    existing_manifest = _read(root / mpath)
    if existing_manifest is None:
        result.missing.append(mpath)
    elif existing_manifest != manifest:
        result.changed.append(mpath)
        result.old[mpath] = existing_manifest
    produced[mpath] = manifest
    result.writes = produced
    result.hashes = {path: digest(text.encode("utf-8")) for path, text in produced.items()}
    result.orphaned = sorted(f for f in before - set(produced) if (root / f).exists())
    return result


def plan_removal(root: Path, service: str) -> Plan:
    """Everything obsgen owns of a service whose spec is gone, manifest included."""
    files = set(owned(root, service)) | {manifest_path(service)}
    return Plan(root, orphaned=sorted(f for f in files if (root / f).exists()))


def plan(root: Path, services: dict[str, list[Output]], specs: dict[str, str] | None = None) -> Plan:
    """Compare what the specs produce with what is on disk, service by service.

    ``specs`` maps a service to its spec's path relative to ``root`` (recorded in the manifest).
    """
    result = Plan(root)
    for service, outputs in sorted(services.items()):
        result.extend(plan_service(root, service, outputs, spec=(specs or {}).get(service)))
    return result


# --------------------------------------------------------------------------- staging


def new_staging(root: Path) -> tuple[Path, list[Path]]:
    """Create the staging directory under ``root`` (creating ``root`` if needed).

    Returns it and the directories created on the way (to remove if the build fails).
    The staging directory ignores itself in git, in case a killed build leaves it behind.
    """
    import shutil

    created = _missing_dirs(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f"{STAGING_PREFIX}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    (staging / ".gitignore").write_text("*\n", "utf-8")
    return staging, created


def _missing_dirs(path: Path) -> list[Path]:
    out = []
    while not path.exists() and path != path.parent:
        out.append(path)
        path = path.parent
    return out


def discard_staging(staging: Path, created: list[Path]) -> None:
    """Remove the staging directory and any directory the build created for it (after a failure)."""
    import shutil

    shutil.rmtree(staging, ignore_errors=True)
    for d in created:  # innermost first
        try:
            d.rmdir()
        except OSError:
            break


def write_file(path: Path, text: str) -> None:
    """Write one staged file (the only place new bytes hit the disk)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def stage(p: Plan, into: Path) -> None:
    """Write every file the plan changes or adds under ``into`` (same relative paths)."""
    made: set[Path] = set()  # a service's ~40 files share a handful of directories
    for rel in p.pending:
        target = into / rel
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        write_file(target, p.writes[rel])


class RollbackError(Exception):
    """Undoing a failed build failed too; the previous files are still in the staging directory."""


class Transaction:
    """Moves staged files into place and prunes owned files, all or nothing.

    Every step is logged; :meth:`rollback` undoes them in reverse. Replaced files
    are kept as hard links (a copy where links are not supported) under
    ``<staging>/backup`` so readers never see a missing file; pruned files are
    moved there.
    """

    def __init__(self, root: Path, staging: Path):
        self.root = root
        self.backup = staging / "backup"
        self.staging = staging
        self._undo: list[tuple[str, Path, Path | None]] = []
        self._present: set[Path] = set()  # directories there already or made: a service's files share a few

    def _mkdirs(self, directory: Path) -> None:
        if directory in self._present:
            return
        for d in reversed(_missing_dirs(directory)):
            d.mkdir()
            self._undo.append(("rmdir", d, None))
        self._present.add(directory)

    def _keep(self, rel: str) -> Path:
        saved = self.backup / rel
        saved.parent.mkdir(parents=True, exist_ok=True)
        return saved

    def put(self, staged: Path, rel: str) -> None:
        """Move ``staged`` (a file, or a directory where ``root/rel`` is none yet) to ``root/rel``, replacing
        what is there atomically."""
        target = self.root / rel
        self._mkdirs(target.parent)
        if os.path.lexists(target):
            saved = self._keep(rel)
            try:
                os.link(target, saved)
            except OSError:
                import shutil

                shutil.copy2(target, saved)
            self._undo.append(("restore", saved, target))
            os.replace(staged, target)
        else:
            os.replace(staged, target)
            self._undo.append(("return", target, staged))

    def remove(self, rel: str) -> None:
        """Prune ``root/rel`` (moved to the backup until the transaction is done)."""
        target = self.root / rel
        if not os.path.lexists(target):
            return
        saved = self._keep(rel)
        os.replace(target, saved)
        self._undo.append(("restore", saved, target))

    def tidy(self, rels: Iterable[str]) -> None:
        """Remove directories that pruning left empty (never ``root`` itself)."""
        for rel in sorted(rels, reverse=True):
            for parent in (self.root / rel).parents:
                if parent == self.root or not parent.is_relative_to(self.root):
                    break
                try:
                    if any(parent.iterdir()):
                        break
                except FileNotFoundError:
                    continue
                parent.rmdir()
                self._undo.append(("mkdir", parent, None))

    def done(self) -> None:
        self._undo.clear()

    def rollback(self) -> None:
        """Undo every logged step, newest first; Ctrl-C cannot interrupt it."""
        errors = []
        with _sigint_deferred():
            for action, path, target in reversed(self._undo):
                try:
                    if action in ("restore", "return"):
                        os.replace(path, target)  # type: ignore[arg-type]
                    elif action == "rmdir":
                        path.rmdir()
                    elif action == "mkdir":
                        path.mkdir(exist_ok=True)
                except OSError as exc:
                    errors.append(f"{action} {path}: {exc}")
            self._undo.clear()
        if errors:
            raise RollbackError(f"could not undo the partial build ({'; '.join(errors[:5])}); the previous "
                                f"files are kept in {self.backup}")


class _sigint_deferred:
    """Ignore Ctrl-C inside the block (only possible in the main thread)."""

    def __enter__(self):
        import signal
        import threading

        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        return self

    def __exit__(self, *exc):
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def moves(root: Path, staged: Path, pending: list[str]) -> list[tuple[Path, str]]:
    """What to move from ``staged`` (where :func:`stage` wrote ``pending``) to ``root``: ``(staged, rel)`` pairs.

    A top directory (a service's) that ``root`` has none of yet moves in one step: everything under it is
    new, so all of it is pending and its staged directory holds exactly that. A cold fleet build moves a
    thousand directories instead of tens of thousands of files; anything else moves file by file.
    """
    by_top: dict[str, list[str]] = {}
    for rel in pending:
        by_top.setdefault(rel.partition("/")[0], []).append(rel)
    out = []
    for top, rels in by_top.items():
        if all("/" in rel for rel in rels) and not os.path.lexists(root / top):
            out.append((staged / top, top))
        else:
            out += [(staged / rel, rel) for rel in rels]
    return out


def commit(root: Path, staging: Path, puts: list[tuple[Path, str]], removes: list[str]) -> None:
    """Move every staged file into place and prune ``removes``; on any failure undo everything."""
    tx = Transaction(root, staging)
    try:
        for staged, rel in puts:
            tx.put(staged, rel)
        for rel in removes:
            tx.remove(rel)
        tx.tidy(removes)
    except BaseException:
        tx.rollback()
        raise
    tx.done()


def apply(p: Plan) -> None:
    """Write the plan all or nothing: stage every file, then move them into place, then prune."""
    import shutil

    if not (p.pending or p.orphaned):
        return
    staging, created = new_staging(p.root)
    try:
        stage(p, staging / "new")
        commit(p.root, staging, moves(p.root, staging / "new", p.pending), p.orphaned)
    except RollbackError:
        raise
    except BaseException:
        discard_staging(staging, created)
        raise
    shutil.rmtree(staging, ignore_errors=True)
