"""The Redis runbook pages, run as an on-call engineer runs them, against the live servers.

A page's commands are the ```bash blocks that follow ``<!-- commands: redis <component> -->`` (the convention
is in obsgen/templates/runbooks/redis.md.j2): one command per line. They run line by line in one bash shell,
so what an early line sets (``MASTER``, from the sentinels) is what later lines use, with the variables the
page asks for filled from the firing alert's labels (label ``x`` is ``$X``) and from the operator's choices.
A ``redis-cli`` placed before the real one on ``PATH`` records every call: its arguments as bash expanded them,
its exit code and output. Each call is judged against what the harness knows at that moment, never against
the page itself: a call to a server that is down must fail to connect and every other call must succeed
without an error reply; a line that uses the master (``$MASTER``, ``$MASTER_ADDRESS``) must reach the server
the sentinels name as master; an ``INFO replication`` there must say ``role:master``.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conftest import tool

from .harness import Failure

BLOCK = re.compile(r"<!-- commands: redis (?P<component>\S+) -->\n[ ]*```bash\n(?P<body>.*?)\n[ ]*```", re.S)
SECTIONS = ("Diagnosis", "Mitigation")
# Redis error replies (redis-cli prints them without a prefix when its output is not a terminal, and exits 0).
ERROR = re.compile(r"^(ERR|WRONGTYPE|NOPERM|NOAUTH|WRONGPASS|READONLY|OOM|NOGOODSLAVE|NOQUORUM|INPROG|NOTBUSY|BUSY|"
                   r"LOADING|MASTERDOWN|MISCONF|NOSCRIPT|EXECABORT|NOREPLICAS|CROSSSLOT|MOVED|ASK|CLUSTERDOWN|"
                   r"TRYAGAIN)\b", re.M)
SETS_MASTER = re.compile(r"(^|;\s*)MASTER=")

SHIM = """#!{python}
# redis-cli as the runbook drill sees it: the real one, each call recorded (tests/e2e/runbook_drill.py).
import json, os, subprocess, sys
done = subprocess.run([{real!r}, *sys.argv[1:]], capture_output=True, stdin=subprocess.DEVNULL, timeout=30)
sys.stdout.buffer.write(done.stdout)
sys.stderr.buffer.write(done.stderr)
with open(os.environ["DRILL_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "rc": done.returncode, "out": done.stdout.decode(errors="replace"),
                           "err": done.stderr.decode(errors="replace")}}) + "\\n")
sys.exit(done.returncode)
"""


@dataclass(frozen=True)
class Block:
    section: str
    index: int            # the component's n-th block in its section
    lines: tuple[str, ...]


def blocks(page: str, component: str) -> dict[str, list[Block]]:
    """The component's command blocks of each section, commands only (comments and blank lines dropped)."""
    out: dict[str, list[Block]] = {}
    for section in SECTIONS:
        text = page.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
        found = [m for m in BLOCK.finditer(text) if m["component"] == component]
        out[section] = [Block(section, i, tuple(line.strip() for line in m["body"].split("\n")
                                                if line.strip() and not line.strip().startswith("#")))
                        for i, m in enumerate(found)]
    return out


def page_commands(page: str, component: str) -> set[str]:
    return {line for section in blocks(page, component).values() for b in section for line in b.lines}


def address(argv: list[str]) -> str | None:
    """host:port a redis-cli call addresses, or None when it names none (redis-cli's default 127.0.0.1:6379)."""
    host = port = None
    for flag, value in zip(argv, argv[1:]):
        if flag == "-u":
            url = urllib.parse.urlsplit(value)
            host, port = url.hostname, url.port
        elif flag == "-h":
            host = value
        elif flag == "-p":
            port = value
    return f"{host}:{port}" if host and port else None


@dataclass(frozen=True)
class Call:
    line: str
    argv: list[str]
    rc: int
    out: str
    err: str

    @property
    def target(self) -> str | None:
        return address(self.argv)


@dataclass(frozen=True)
class World:
    """What is true now, from the harness: stopped servers and sentinels, and the master the sentinels name."""

    down: frozenset[str]
    master: str | None
    errors: frozenset[str] = frozenset()   # error replies that are the right answer now (NOQUORUM)


def judge(call: Call, world: World, masters: set[str]) -> list[str]:
    """What is wrong with one call; ``masters`` are where the page's ``$MASTER`` and ``$MASTER_ADDRESS`` point."""
    where = f"`{call.line}` → redis-cli {shlex.join(call.argv)}"
    target = call.target
    if target is None:
        return [f"{where}: names no address, so it would reach redis-cli's default 127.0.0.1:6379"]
    problems = []
    if target in world.down:
        if call.rc == 0 or "Could not connect" not in call.err + call.out:
            problems.append(f"{where}: {target} is down, yet the call did not fail to connect: {call.out!r}")
    elif call.rc != 0:
        problems.append(f"{where}: failed (exit {call.rc}): {(call.err or call.out).strip()!r}")
    else:
        errors = [m for m in ERROR.findall(call.out) if m not in world.errors]
        if errors:
            problems.append(f"{where}: error reply {errors[0]}: {call.out.strip()!r}")
        if target in masters and "replication" in call.argv and "role:master" not in call.out:
            problems.append(f"{where}: the page's master does not say role:master: {call.out!r}")
    return problems


@dataclass
class Run:
    """What one page line did: its output and the redis-cli calls it made."""

    line: str
    output: str
    calls: list[Call]
    problems: list[str]


class Shell:
    """One bash shell that runs a page's lines, with the recording redis-cli first on PATH."""

    def __init__(self, workdir: Path, variables: dict[str, str]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        bin_dir = workdir / "bin"
        bin_dir.mkdir(exist_ok=True)
        shim = bin_dir / "redis-cli"
        shim.write_text(SHIM.format(python=sys.executable, real=tool("redis-cli")))
        shim.chmod(0o755)
        self.log = workdir / "calls.jsonl"
        self.log.touch()
        self.seen = 0
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "DRILL_LOG": str(self.log)}
        self.proc = subprocess.Popen([tool("bash"), "--noprofile", "--norc"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        self.count = 0
        for name, value in variables.items():
            self._send(f"{name}={shlex.quote(value)}")

    def _send(self, text: str, timeout: float = 40.0) -> str:
        """Run ``text`` and return its output, up to the marker echoed after it."""
        self.count += 1
        marker = f"__drill_done_{self.count}__"
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{text}\necho {marker}\n".encode())
        self.proc.stdin.flush()
        deadline, buffer = time.monotonic() + timeout, b""
        while marker.encode() not in buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise Failure(f"the page line `{text}` did not finish within {timeout:g}s (or bash exited: it is "
                              f"not valid bash); its output: {buffer.decode(errors='replace')!r}")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                buffer += chunk
        return buffer.decode(errors="replace").split(marker)[0]

    def value(self, name: str) -> str:
        return self._send(f'printf "%s\\n" "${name}"').strip()

    def run(self, line: str, world: World) -> Run:
        output = self._send(line)
        records = self.log.read_text().splitlines()[self.seen:]
        self.seen += len(records)
        calls = [Call(line, **json.loads(r)) for r in records]
        problems = []
        masters = {name: self.value(name) for name in ("MASTER", "MASTER_ADDRESS")}
        claims = (["MASTER"] if SETS_MASTER.search(line) else []) + (["MASTER_ADDRESS"] if "$MASTER_ADDRESS" in line
                                                                      else [])
        for name in claims:
            if masters[name] != world.master:  # where the page says the master is, against where it is
                problems.append(f"`{line}`: the page's {name} is {masters[name]!r}, the master is {world.master}")
        problems += [p for call in calls for p in judge(call, world, set(masters.values()) - {""})]
        if "redis-cli" in line and not calls:
            problems.append(f"`{line}` made no redis-cli call")
        return Run(line, output, calls, problems)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Coverage:
    """Which page lines ran, per component: every redis-cli line of every Redis page must run once."""

    ran: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, component: str, line: str) -> None:
        with self.lock:
            self.ran.setdefault(component, set()).add(line)

    def missing(self, pages: dict[str, str], components: tuple[str, ...]) -> list[str]:
        out = []
        for alert, page in sorted(pages.items()):
            for component in components:
                for line in sorted(page_commands(page, component)):
                    if "redis-cli" in line and line not in self.ran.get(component, set()):
                        out.append(f"{alert} ({component}): {line}")
        return out


COVERAGE = Coverage()


class PageDrill:
    """One page of one component, run block by block in one shell."""

    def __init__(self, page: str, component: str, workdir: Path, variables: dict[str, str],
                 world: Callable[[], World]) -> None:
        self.blocks = blocks(page, component)
        self.component = component
        self.world = world
        self.shell = Shell(workdir, variables)
        self.runs: list[Run] = []

    def run(self, section: str, *indexes: int, errors: frozenset[str] = frozenset()) -> str:
        """Run blocks of ``section`` (all when no index is given); their output; fails on any wrong call."""
        chosen = [b for b in self.blocks[section] if not indexes or b.index in indexes]
        assert chosen, f"no {section} block {indexes} for {self.component}"
        problems, output = [], []
        for block in chosen:
            for line in block.lines:
                world = self.world()
                world = World(world.down, world.master, world.errors | errors)
                run = self.shell.run(line, world)
                self.runs.append(run)
                COVERAGE.add(self.component, line)
                problems += run.problems
                output.append(run.output)
        assert not problems, "\n".join(problems) + "\n--- output:\n" + "".join(output)
        return "".join(output)

    def close(self) -> None:
        self.shell.close()


def labels_as_variables(labels: dict[str, str]) -> dict[str, str]:
    """The alert's labels as the pages name them: label ``x`` is ``$X``."""
    return {k.upper(): v for k, v in labels.items() if re.fullmatch(r"[a-z_][a-z0-9_]*", k)}
