"""Command line: ``obsgen build``, ``obsgen validate``, ``obsgen schema``.

Exit codes: 0 ok, 1 ``--check`` found differences, 2 invalid input (spec
problems, bad paths, files obsgen refuses to overwrite), 70 internal error,
74 the output directory could not be written (nothing was changed),
130 interrupted (nothing was changed).

The parser is written here rather than with click: importing click cost about
30 ms of every run, which is most of a no-change build of one spec (what a
pre-commit hook runs). Usage errors read as click's did (``Usage: …``,
``Try 'obsgen build --help' for help.``, ``Error: …``, exit 2), and ``main``
keeps click's ``main(args=…, prog_name=…)`` so ``click.testing.CliRunner``
still drives it in tests.

To add an option, add an :class:`Option` to its command in ``COMMANDS``. An
option of ``build`` that changes what is generated must also be listed in
``RENDER_OPTIONS``: its value is passed to ``pipeline.render`` as a keyword and
enters the fingerprint that decides whether an unchanged spec can be skipped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

EXIT_DIFF, EXIT_INVALID, EXIT_INTERNAL, EXIT_IO, EXIT_INTERRUPTED = 1, 2, 70, 74, 130

# `build` options that change the output (passed to pipeline.render, part of the fingerprint).
RENDER_OPTIONS: tuple[str, ...] = ("time_scale",)


def _echo(message: str, *, err: bool = False, nl: bool = True) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(message + ("\n" if nl else ""))
    stream.flush()


def spec_files(inputs: Iterable[str], *, exclude: Path | None = None) -> list[Path]:
    """Files as given; directories expand to every ``*.yaml``/``*.yml`` below them, sorted.

    A file named twice counts once; files under ``exclude`` (the output directory) are not specs.
    """
    from obsgen.errors import UsageError

    out: list[Path] = []
    seen: set[str] = set()
    skip = os.path.abspath(exclude) + os.sep if exclude is not None else None
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            found = [p for p in found if not (skip and os.path.abspath(p).startswith(skip))]
        elif path.is_file():
            found = [path]
        else:
            raise UsageError(f"{raw}: no such file or directory")
        for p in found:
            if (key := os.path.abspath(p)) not in seen:
                seen.add(key)
                out.append(p)
    if not out:
        raise UsageError("no spec files found in " + ", ".join(inputs))
    return out


def load_all(paths: list[Path]):
    """Load every spec, reporting every problem of every file (and duplicate services) before giving up."""
    from obsgen.errors import SpecError
    from obsgen.fleet import duplicate_problems
    from obsgen.spec import load

    specs, problems = [], []
    for path in paths:
        try:
            specs.append(load(path))
        except SpecError as exc:
            problems += exc.problems
    problems += duplicate_problems((s.service.name, s.file) for s in specs)
    if problems:
        raise SpecError(problems)
    return specs


# --------------------------------------------------------------------------- commands


def _build(o: dict) -> int:
    from obsgen import fleet
    from obsgen.errors import UsageError

    if o["time_scale"] and "out" not in o["given"]:
        raise UsageError("--time-scale writes test-only rules; give an explicit --out (not the committed output)")

    root = Path(o["out"])
    result = fleet.build(spec_files(o["specs"], exclude=root), root, inputs=o["specs"], check=o["check"],
                         jobs=o["jobs"] or fleet.default_jobs(), options={k: o[k] for k in RENDER_OPTIONS},
                         progress=sys.stderr)
    p = result.plan
    if o["check"]:
        _report(p)
        return 0 if p.clean else EXIT_DIFF
    touched = len(p.changed) + len(p.missing) + len(p.orphaned)
    _echo(f"obsgen: {result.services} service(s) built into {root}/ ({touched} file(s) changed)", err=True)
    return 0


def _report(p) -> None:
    for label, paths in (("changed", p.changed), ("missing", p.missing), ("orphaned", p.orphaned)):
        for path in paths:
            _echo(f"{label}: {p.root / path}")
    if p.changed:
        _echo(p.diff(), nl=False)
    if p.clean:
        _echo(f"obsgen: {p.root}/ is up to date", err=True)
    else:
        _echo(f"obsgen: {p.root}/ differs from the specs; run `obsgen build` and commit the result", err=True)


def _validate(o: dict) -> int:
    from obsgen import fleet

    n = fleet.validate(spec_files(o["specs"]), jobs=o["jobs"] or fleet.default_jobs(), progress=sys.stderr)
    _echo(f"obsgen: {n} spec(s) valid", err=True)
    return 0


def _schema(o: dict) -> int:
    import json

    from obsgen.spec.schema import schema as load_schema

    _echo(json.dumps(load_schema(), indent=2, ensure_ascii=False))
    return 0


def _guarded(action: Callable[[dict], int], options: dict) -> int:
    """Run a command, turning every failure into a message and an exit code (never a traceback)."""
    try:
        return action(options)
    except KeyboardInterrupt:
        _echo("obsgen: interrupted; nothing was changed", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place that turns failures into a clean report
        from obsgen.errors import SpecError, UsageError
        from obsgen.writer import RollbackError

        if isinstance(exc, SpecError):
            _echo(str(exc), err=True)
            n = len(exc.problems)
            _echo(f"obsgen: {n} problem{'s' if n != 1 else ''} found", err=True)
            return EXIT_INVALID
        if isinstance(exc, UsageError):
            _echo(f"obsgen: {exc}", err=True)
            return EXIT_INVALID
        if os.environ.get("OBSGEN_DEBUG"):
            raise
        if isinstance(exc, RollbackError):
            _echo(f"obsgen: {exc}", err=True)
            return EXIT_INTERNAL
        if isinstance(exc, OSError):
            _echo(f"obsgen: {exc}; nothing was changed", err=True)
            return EXIT_IO
        _echo(f"obsgen: internal error: {type(exc).__name__}: {exc}\n"
              "This is a bug in obsgen; set OBSGEN_DEBUG=1 for a traceback and report it.", err=True)
        return EXIT_INTERNAL


# --------------------------------------------------------------------------- parsing


class Option:
    """``--name VALUE`` (or a flag); ``convert`` turns the text into the value or raises ValueError."""

    def __init__(self, name: str, help: str, *, short: str = "", metavar: str = "", flag: bool = False,
                 default: object = None, convert: Callable[[str], object] = str, shown_default: str = ""):
        self.name, self.help, self.short, self.metavar, self.flag = name, help, short, metavar, flag
        self.default = False if flag else default
        self.convert, self.shown_default = convert, shown_default
        self.dest = name.lstrip("-").replace("-", "_")


class Command:
    def __init__(self, name: str, help: str, run: Callable[[dict], int], *, args: str = "",
                 options: tuple[Option, ...] = ()):
        self.name, self.help, self.run, self.args, self.options = name, help, run, args, options


def _at_least_one(kind: type, noun: str) -> Callable[[str], object]:
    """A converter for a number of at least 1, with click's messages."""
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a valid {noun}.") from None
        if value < 1:
            raise ValueError(f"{value:g} is not in the range x>=1.")
        return value
    return convert


_time_scale = _at_least_one(float, "float")
_jobs = _at_least_one(int, "integer")


_JOBS = Option("--jobs", "Specs handled in parallel.", short="-j", metavar="N", convert=_jobs,
               shown_default="the number of CPUs")
COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("build", "Build every SPEC (files or directories) into OUT/<service>/.", _build, args="SPECS",
            options=(Option("--out", "Output directory.", metavar="TEXT", default="generated",
                            shown_default="generated"),
                     Option("--check", "Write nothing; exit 1 if the output directory is not what the specs "
                            "produce.", flag=True),
                     _JOBS,
                     Option("--time-scale", "For end-to-end tests only: divide every alert `for`/`keep_firing_for` "
                            "and every PromQL range window, subquery and offset by N (whole seconds, at least 1s); "
                            "names, thresholds and annotations stay as shipped. Writes no promtool tests (they "
                            "assume real durations). Needs an explicit --out.", metavar="N", convert=_time_scale))),
    Command("schema", "Print the JSON Schema of the spec (for editors: yaml-language-server).", _schema),
    Command("validate", "Check SPECs (files or directories) without writing anything.", _validate, args="SPECS",
            options=(_JOBS,)),
)}
MAIN_HELP = ("Observability as code: Prometheus rules, promtool tests, dashboards and runbooks from a "
             "service spec.")


class _UsageError(Exception):
    def __init__(self, message: str, command: Command | None = None):
        super().__init__(message)
        self.command = command


def _usage(command: Command | None) -> str:
    if command is None:
        return "Usage: obsgen [OPTIONS] COMMAND [ARGS]..."
    return f"Usage: obsgen {command.name} [OPTIONS]" + (f" {command.args}..." if command.args else "")


def _wrap(text: str, indent: int, width: int = 78) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width - indent, break_on_hyphens=False) or [""]


def _help(command: Command | None) -> str:
    lines = [_usage(command), ""]
    lines += ["  " + line for line in _wrap(command.help if command else MAIN_HELP, 2)]
    rows = []
    for opt in (command.options if command else ()):
        name = (f"{opt.short}, " if opt.short else "") + opt.name + (f" {opt.metavar}" if not opt.flag else "")
        text = opt.help + (f"  [default: {opt.shown_default}]" if opt.shown_default else "")
        rows.append((name, text))
    rows.append(("-h, --help", "Show this message and exit."))
    lines += ["", "Options:"] + _table(rows)
    if command is None:
        lines += ["", "Commands:"] + _table([(c.name, c.help) for c in COMMANDS.values()])
    return "\n".join(lines)


def _table(rows: list[tuple[str, str]]) -> list[str]:
    first = max(len(name) for name, _ in rows) + 2
    out = []
    for name, text in rows:
        wrapped = _wrap(text, first + 2)
        out.append(f"  {name.ljust(first)}{wrapped[0]}")
        out += [" " * (first + 2) + more for more in wrapped[1:]]
    return out


def _parse(command: Command, argv: list[str]) -> dict | None:
    """Options and arguments of ``command``; ``None`` when help was printed.

    ``values["given"]`` names the options the user gave (to tell an explicit value from a default).
    """
    values: dict = {opt.dest: opt.default for opt in command.options}
    given: set[str] = set()
    values["given"] = given
    by_name = {n: opt for opt in command.options for n in (opt.name, opt.short) if n}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":
            positional += argv[i:]
            break
        if token in ("-h", "--help"):
            _echo(_help(command))
            return None
        if not token.startswith("-") or token == "-":
            positional.append(token)
            continue
        name, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        opt = by_name.get(name)
        if opt is None:
            import difflib

            close = difflib.get_close_matches(name, [o.name for o in command.options] + ["--help"], n=1)
            raise _UsageError(f"No such option '{name}'." + (f" Did you mean '{close[0]}'?" if close else ""),
                              command)
        given.add(opt.dest)
        if opt.flag:
            if eq:
                raise _UsageError(f"Option '{opt.name}' does not take a value.", command)
            values[opt.dest] = True
            continue
        if not eq:
            if i >= len(argv):
                raise _UsageError(f"Option '{name}' requires an argument.", command)
            inline, i = argv[i], i + 1
        try:
            values[opt.dest] = opt.convert(inline)
        except ValueError as exc:
            raise _UsageError(f"Invalid value for '{opt.name}': {exc}", command) from None
    if command.args:
        if not positional:
            raise _UsageError(f"Missing argument '{command.args}...'.", command)
        values[command.args.lower()] = positional
    elif positional:
        s = "s" if len(positional) > 1 else ""
        raise _UsageError(f"Got unexpected extra argument{s} ({' '.join(positional)})", command)
    return values


def _dispatch(argv: list[str]) -> int:
    try:
        if not argv:
            _echo(_help(None), err=True)
            return EXIT_INVALID
        head, rest = argv[0], argv[1:]
        if head in ("-h", "--help"):
            _echo(_help(None))
            return 0
        if head.startswith("-"):
            raise _UsageError(f"No such option '{head}'.")
        command = COMMANDS.get(head)
        if command is None:
            raise _UsageError(f"No such command '{head}'.")
        options = _parse(command, rest)
    except _UsageError as exc:
        where = f"obsgen {exc.command.name}" if exc.command else "obsgen"
        _echo(f"{_usage(exc.command)}\nTry '{where} --help' for help.\n\nError: {exc}", err=True)
        return EXIT_INVALID
    if options is None:
        return 0
    return _guarded(command.run, options)


class _Main:
    """The ``obsgen`` entry point; ``main(args=…, prog_name=…)`` as click's commands have it."""

    name = "obsgen"

    def main(self, args: Iterable[str] | None = None, prog_name: str | None = None, **_: object) -> None:
        raise SystemExit(_dispatch(list(sys.argv[1:] if args is None else args)))

    def __call__(self, args: Iterable[str] | None = None) -> None:
        self.main(args)


main = _Main()
