"""Building a fleet: many specs into one output directory, in parallel, all or nothing.

1. A spec whose inputs did not change since the last build into this directory,
   and whose files are still on disk exactly as that build wrote them, is skipped
   (see *The skip cache* below).
2. The other specs are loaded, checked and rendered in worker processes
   (``jobs`` of them). Each worker stages its service's new files in the staging
   directory and returns a small :class:`~obsgen.writer.Plan` without contents.
3. Only when every spec rendered, no two specs claim one service and no file
   obsgen did not write is in the way does one :class:`~obsgen.writer.Transaction`
   move the staged files into place and prune what obsgen no longer produces:
   files a service stopped producing, and every file of a service whose spec was
   removed (its manifest names a spec under the inputs that no longer yields it).

Any failure before or during that last step leaves the output directory as it
was. Output never depends on ``jobs``: each service's files depend on its spec
alone, and results are put in a fixed order before anything is reported.

The skip cache
--------------
``<out>/.obsgen-cache/state.json`` is local build state, never output: its own
``.gitignore`` keeps it out of the GitOps repo, ``--check`` ignores it, and
deleting it only costs one full rebuild. Per spec it records the service, a
*fingerprint* of everything the output depends on, and the digest of every file
the build left on disk (manifest included). The fingerprint hashes the spec's
bytes, its path relative to the output directory (the manifest records it), every
file of the obsgen package (code, templates, schemas), the Python version, the
installed distributions, and the render options. A spec is skipped only when the
fingerprint matches *and* every recorded file is on disk with its recorded digest,
so a hand-edited or deleted generated file, a changed template or a changed
option all render the service again. The manifest itself stays free of it:
committed files hold no tool version or machine-specific hash.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from obsgen import writer
from obsgen.model.records import record

CACHE_DIR = ".obsgen-cache"
STATE_FILE = f"{CACHE_DIR}/state.json"
CACHE_VERSION = 2
# Distributions whose code shapes the output; the names of everything installed next to them
# enter the fingerprint, so an upgrade of any of them renders everything again.
_DEPENDENCIES = ("yaml", "jinja2", "jsonschema", "grafanalib")


# --------------------------------------------------------------------------- fingerprints


@cache
def code_fingerprint() -> str:
    """Hash of every file of the obsgen package plus the interpreter and installed distributions."""
    h = writer.hasher()
    package = str(Path(__file__).resolve().parent)
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        # The path relative to the package, cut from os.walk's own prefix (os.path.relpath per file: ~0.5 ms).
        folder = dirpath[len(package) + 1:]
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(dirpath, name)
            h.update(os.path.join(folder, name).encode() + b"\0")
            with open(path, "rb") as f:
                h.update(f.read())
            h.update(b"\0")
    h.update(sys.version.encode() + b"\0")
    for site in sorted(_site_dirs()):
        try:
            h.update("\n".join(sorted(n for n in os.listdir(site) if n.endswith((".dist-info", ".egg-info"))))
                     .encode())
        except OSError:
            h.update(site.encode())
    return h.hexdigest()


def _site_dirs() -> set[str]:
    from importlib.util import find_spec

    out = set()
    for module in _DEPENDENCIES:
        spec = find_spec(module)
        if spec is not None and spec.origin:
            out.add(os.path.dirname(os.path.dirname(spec.origin)))
    return out


def spec_key(path: Path | str, root: Path) -> str:
    """A spec's path relative to the output directory, as recorded in manifests."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()


def fingerprint(key: str, data: bytes, options: dict) -> str:
    h = writer.hasher()
    for part in (str(CACHE_VERSION), code_fingerprint(), json.dumps(options, sort_keys=True, default=str), key):
        h.update(part.encode() + b"\0")
    h.update(data)
    return h.hexdigest()


def _load_state(root: Path) -> dict[str, dict]:
    try:
        data = json.loads((root / STATE_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("specs"), dict):
        return {}
    return {k: v for k, v in data["specs"].items()
            if isinstance(v, dict) and isinstance(v.get("service"), str) and isinstance(v.get("files"), dict)}


def _state_text(entries: dict[str, dict]) -> str:
    return json.dumps({"version": CACHE_VERSION, "specs": entries}, sort_keys=True, separators=(",", ":")) + "\n"


def _unchanged_on_disk(root: str, files: dict) -> bool:
    """Every recorded file is on disk with its recorded digest (plain strings: this runs for every
    file of every service on a no-change rebuild)."""
    for rel, expected in files.items():
        if not isinstance(rel, str) or rel.startswith("/") or ".." in rel.split("/"):
            return False
        try:
            with open(os.path.join(root, rel), "rb") as f:
                if writer.digest(f.read()) != expected:
                    return False
        except OSError:
            return False
    return True


def _verify(root: Path, entries: list[tuple[str, dict]], jobs: int) -> set[str]:
    """Keys whose recorded files are all on disk unchanged (hashing in threads: hashlib releases the GIL)."""
    if not entries:
        return set()
    check = lambda item: item[0] if _unchanged_on_disk(str(root), item[1]["files"]) else None  # noqa: E731
    if jobs <= 1 or len(entries) < 8:
        return {k for k in map(check, entries) if k}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return {k for k in pool.map(check, entries, chunksize=16) if k}


# --------------------------------------------------------------------------- workers


@record
class Task:
    """One spec for a worker: where it is, its key in the manifests and where to stage its files."""

    index: int
    path: str
    key: str
    root: str
    staging: str | None  # None: check only, write nothing
    options: tuple[tuple[str, object], ...] = ()


@dataclass(eq=False, repr=False)
class Done:
    """What a worker sends back for one spec: its plan without contents, or its problems."""

    index: int
    path: str
    service: str | None
    plan: writer.Plan | None = None
    problems: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def _render(task: Task) -> Done:
    """Load, check and render one spec; stage its new files. Runs in a worker process."""
    from obsgen import pipeline
    from obsgen.errors import SpecError
    from obsgen.spec import load

    try:
        spec = load(Path(task.path))
    except SpecError as exc:
        return Done(task.index, task.path, None, problems=exc.problems)
    name = spec.service.name
    outputs = pipeline.render_all(spec, **dict(task.options))
    p = writer.plan_service(Path(task.root), name, outputs, spec=task.key,
                            environments=[env for env, _ in spec.environments])
    if task.staging is not None:
        writer.stage(p, Path(task.staging) / str(task.index))
    return Done(task.index, task.path, name, p.light(keep_diff=task.staging is None), warnings=_warnings(spec))


def _warnings(spec) -> list:
    """The spec's warnings and its environments', each once."""
    return list(dict.fromkeys([*spec.warnings, *(w for _, merged in spec.environments for w in merged.warnings)]))


def _validate(task: Task) -> Done:
    from obsgen.errors import SpecError
    from obsgen.spec import load

    try:
        spec = load(Path(task.path))
        return Done(task.index, task.path, spec.service.name, warnings=_warnings(spec))
    except SpecError as exc:
        return Done(task.index, task.path, None, problems=exc.problems)


def _worker_init() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool


def start_method() -> str:
    """``fork`` where it exists (workers inherit the parent's imports); ``spawn`` elsewhere."""
    import multiprocessing

    wanted = os.environ.get("OBSGEN_START_METHOD")
    methods = multiprocessing.get_all_start_methods()
    if wanted in methods:
        return wanted  # type: ignore[return-value]
    return "fork" if "fork" in methods and sys.platform == "linux" else "spawn"


def _map(func: Callable[[Task], Done], tasks: list[Task], jobs: int, progress: Progress) -> list[Done]:
    """Run ``func`` over ``tasks`` in up to ``jobs`` processes (in this one when a pool cannot help)."""
    if not tasks:
        return []  # a no-change build imports none of it
    workers = min(jobs, len(tasks))
    out: list[Done] = []
    with _collector_settled(lambda: _import_for(func)):
        if workers <= 1:
            for task in tasks:
                out.append(func(task))
                progress.advance()
            return out
        import multiprocessing

        ctx = multiprocessing.get_context(start_method())
        # Biggest specs first, so that no worker is left with a large one at the end.
        ordered = sorted(tasks, key=lambda t: -_size(t.path))
        with ctx.Pool(workers, initializer=_worker_init) as pool:
            for done in pool.imap_unordered(func, ordered):
                out.append(done)
                progress.advance()
    return out


def _import_for(func: Callable[[Task], Done]) -> None:
    """Import what ``func`` needs once, here: forked workers inherit the modules instead of importing them each."""
    import obsgen.spec  # noqa: F401

    if func is _render:
        import obsgen.pipeline  # noqa: F401


@contextmanager
def _collector_settled(load: Callable[[], None]):
    """Python's cyclic garbage collector run less often for a while, and kept off what ``load`` imports.

    A build allocates millions of short-lived objects and few reference cycles: frozen, the modules' objects are
    no longer traversed by every full collection (and stay shared, untouched, with forked workers), and young
    objects are collected less often; about a tenth of a cold build. ``load`` (the imports, a third of a cold
    build's own time and nearly all of it long-lived objects) runs under the raised threshold too: at the
    default one the collector ran a dozen times during them (3-4 ms). Afterwards everything is as it was.
    """
    import gc

    threshold = gc.get_threshold()
    gc.set_threshold(10_000, *threshold[1:])
    try:
        load()
        gc.freeze()
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# --------------------------------------------------------------------------- progress


class Progress:
    """A one-line progress bar on ``stream`` when it is a terminal; silent otherwise."""

    WIDTH = 28

    def __init__(self, total: int, stream=None, label: str = "building"):
        self.total, self.done, self.label = total, 0, label
        self.stream = stream
        self.enabled = bool(stream is not None and total > 1 and _isatty(stream))
        self._drawn = 0.0
        self._start = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            now = time.monotonic()
            if now - self._drawn >= 0.1 or self.done >= self.total:
                self._drawn = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        filled = self.WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\robsgen: {self.label} [{bar}] {self.done}/{self.total} services  "
                          f"{now - self._start:.1f}s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._drawn = 0.0


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------------------- errors


def duplicate_problems(claims: Iterable[tuple[str, str]]) -> list:
    """A located problem in every file when several specs claim one service name.

    ``claims`` are ``(service, spec file)`` pairs.
    """
    from obsgen.errors import Problem

    by_name: dict[str, list[str]] = {}
    for name, file in claims:
        by_name.setdefault(name, []).append(file)
    problems = []
    for name, files in sorted(by_name.items()):
        if len(files) < 2:
            continue
        for file in files:
            others = ", ".join(f for f in files if f != file) or file
            line, col = _service_name_position(file)
            problems.append(Problem(file, line, col, ("service", "name"),
                                    f"service `{name}` is also defined in {others}; service names must be unique"))
    return problems


def _service_name_position(file: str) -> tuple[int, int]:
    from obsgen.spec import source

    try:
        return source.load(Path(file).read_text("utf-8"), file).where(("service", "name"))
    except Exception:  # noqa: BLE001 - only a position for an error message
        return (1, 1)


# --------------------------------------------------------------------------- build


@dataclass(eq=False, repr=False)
class Result:
    """What a build did (or, with ``check``, would do)."""

    plan: writer.Plan
    services: int
    rendered: int
    skipped: int
    removed: list[str] = field(default_factory=list)
    warnings: list = field(default_factory=list)
    """What builds but will not work where it is used, for the specs rendered (not those skipped unchanged)."""


class _Scope:
    """Which recorded specs this build speaks for: the input files, and anything under an input directory."""

    def __init__(self, inputs: Sequence[str | Path], root: Path):
        self.files: set[str] = set()
        self.dirs: list[str] = []
        for raw in inputs:
            key = spec_key(raw, root)
            if Path(raw).is_dir():
                self.dirs.append(key.rstrip("/") + "/")
            else:
                self.files.add(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in self.files or any(key.startswith(d) for d in self.dirs))


def _removed_services(root: Path, produced: set[str], scope: _Scope) -> list[str]:
    """Services with a manifest under ``root`` whose recorded spec is in scope but did not produce them."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    out = []
    for name in names:
        if name.startswith(".") or name in produced or not (root / name / writer.MANIFEST).is_file():
            continue
        if writer.read_manifest(root, name).get("spec") in scope:
            out.append(name)
    return out


def build(paths: Sequence[Path], root: Path, *, inputs: Sequence[str | Path] = (), check: bool = False,
          jobs: int = 1, options: dict | None = None, progress=None) -> Result:
    """Build (or with ``check`` only compare) every spec in ``paths`` into ``root``, all or nothing.

    ``inputs`` are the files and directories the user named: services whose recorded spec is
    under them but no longer produces them are pruned. ``progress`` is a stream for the bar
    (drawn only if it is a terminal). Raises :class:`~obsgen.errors.SpecError` for invalid specs
    and duplicate services, :class:`~obsgen.errors.UsageError` for files obsgen refuses to
    overwrite; in every such case nothing under ``root`` has changed.
    """
    from obsgen.errors import SpecError, UsageError

    options = dict(options or {})
    items = _fingerprinted(paths, root, options)
    state = _load_state(root)
    fresh = _verify(root, [(key, state[key]) for _, _, key, fp in items
                           if key in state and state[key].get("fingerprint") == fp], jobs)
    skipped = {key: state[key]["service"] for key in fresh}
    path_of = {key: path for _, path, key, _ in items}

    bar = Progress(len(items), progress, "checking" if check else "building")
    bar.advance(len(skipped))
    staging: Path | None = None
    created: list[Path] = []
    done = False
    try:
        todo = [it for it in items if it[2] not in fresh]
        if todo and not check:
            staging, created = writer.new_staging(root)
        tasks = [Task(index, path, key, str(root), str(staging) if staging else None, tuple(sorted(options.items())))
                 for index, path, key, _ in todo]
        results = sorted(_map(_render, tasks, jobs, bar), key=lambda d: d.index)
        bar.close()

        problems = [p for d in results for p in d.problems]
        claims = [(d.service, d.path) for d in results if d.service] + \
                 [(service, path_of[key]) for key, service in skipped.items()]
        problems += duplicate_problems(sorted(claims, key=lambda c: c[1]))
        if problems:
            raise SpecError(problems)

        rendered = {d.service: d for d in results if d.service and d.plan}
        removed = _removed_services(root, set(rendered) | set(skipped.values()), _Scope(inputs, root))
        plans = {name: d.plan for name, d in rendered.items()}
        plans.update({name: writer.plan_removal(root, name) for name in removed})
        total = writer.Plan(root)
        for name in sorted(plans):
            total.extend(plans[name])  # type: ignore[arg-type]
        result = Result(total, len(items), len(tasks), len(skipped), removed, [w for d in results for w in d.warnings])
        if not check:
            if total.conflicts:
                raise UsageError("refusing to overwrite files obsgen did not write: " + ", ".join(
                    str(root / c) for c in total.conflicts) + "; move them away or delete them")
            puts = [put for d in results if d.plan  # staged when rendered
                    for put in writer.moves(root, staging / str(d.index), d.plan.pending)]  # type: ignore[operator]
            cache = _cache_files(root, state, {key: fp for _, _, key, fp in items}, rendered, removed)
            if puts or total.orphaned or cache:
                if staging is None:
                    staging, created = writer.new_staging(root)
                for rel, text in cache.items():
                    staged = staging / "cache" / Path(rel).name
                    staged.parent.mkdir(exist_ok=True)
                    writer.write_file(staged, text)
                    puts.append((staged, rel))
                writer.commit(root, staging, puts, total.orphaned)
        done = True
        return result
    except writer.RollbackError:
        staging = None  # it holds the previous files now: keep it for the user
        raise
    finally:
        bar.close()
        if staging is not None:
            if done:
                import shutil

                shutil.rmtree(staging, ignore_errors=True)
            else:
                writer.discard_staging(staging, created)


def _fingerprinted(paths: Sequence[Path], root: Path, options: dict) -> list[tuple[int, str, str, str]]:
    """``(index, path, key, fingerprint)`` of every spec."""
    items = []
    for index, path in enumerate(paths):
        key = spec_key(path, root)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            from obsgen.errors import UsageError

            raise UsageError(f"{path}: cannot read ({exc.strerror or exc})") from None
        items.append((index, str(path), key, fingerprint(key, data, options)))
    return items


def _cache_files(root: Path, state: dict[str, dict], fingerprints: dict[str, str], rendered: dict[str, Done],
                 removed: list[str]) -> dict[str, str]:
    """The skip cache files to write after this build (none if nothing changed).

    Entries of pruned services, and of a service now produced from another spec, are dropped.
    """
    owner = {name: spec_key(d.path, root) for name, d in rendered.items()}
    entries = {key: e for key, e in state.items()
               if e["service"] not in removed and owner.get(e["service"], key) == key}
    for name, d in rendered.items():
        entries[owner[name]] = {"service": name, "fingerprint": fingerprints[owner[name]],
                                "files": d.plan.hashes}  # type: ignore[union-attr]
    if entries == state:
        return {}
    out = {STATE_FILE: _state_text(entries)}
    if not (root / CACHE_DIR / ".gitignore").exists():
        out[f"{CACHE_DIR}/.gitignore"] = "# obsgen's local build cache: never commit it\n*\n"
    return out


def validate(paths: Sequence[Path], *, jobs: int = 1, progress=None) -> tuple[int, list]:
    """Check every spec (in parallel); the number checked and their warnings. Raises
    :class:`~obsgen.errors.SpecError` with every problem."""
    from obsgen.errors import SpecError

    bar = Progress(len(paths), progress, "validating")
    tasks = [Task(i, str(p), "", "", None) for i, p in enumerate(paths)]
    try:
        results = sorted(_map(_validate, tasks, jobs, bar), key=lambda d: d.index)
    finally:
        bar.close()
    problems = [p for d in results for p in d.problems]
    problems += duplicate_problems((d.service, d.path) for d in results if d.service)
    if problems:
        raise SpecError(problems)
    return len(results), [w for d in results for w in d.warnings]


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
