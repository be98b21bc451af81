"""A real Prometheus holding known worlds: backfilled with promtool, recordings included.

Samples go in as OpenMetrics through ``promtool tsdb create-blocks-from
openmetrics``; the services' recording rules (obsgen's, as built from each spec)
are then backfilled level by level with ``promtool tsdb create-blocks-from
rules`` against the running server, which is restarted to load each level's
blocks (promtool's backfiller cannot see rules it is backfilling in the same
run, so a rule over another rule's output waits for the next level).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from conftest import tool
from e2e.harness import Failure, Proc, Prometheus, free_port, wait_until

READY_TIMEOUT_S = 30.0


class Server:
    """``prometheus`` on 127.0.0.1 and a free port, over a TSDB directory of backfilled blocks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        config = root / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = Prometheus(self.url)
        self.proc = Proc("prometheus", [
            tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={self.data}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=100y",
            "--log.level=warn"], root)

    def start(self) -> None:
        self.proc.start()
        wait_until(self._ready, READY_TIMEOUT_S, f"Prometheus ready on {self.url}", self.proc)

    def _ready(self) -> bool:
        try:
            self.client.api("/api/v1/status/buildinfo")
            return True
        except (OSError, Failure):
            return False

    def restart(self) -> None:
        self.proc.stop()
        self.start()

    def stop(self) -> None:
        self.proc.stop()

    def add_blocks(self, blocks: Path) -> None:
        """Move every block promtool wrote into the server's TSDB; it loads them when it next starts."""
        for block in blocks.iterdir():
            if block.is_dir():
                shutil.move(str(block), self.data / block.name)


def run_promtool(*args: str, cwd: Path) -> str:
    done = subprocess.run([tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise Failure(f"promtool {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def backfill_samples(text: str, root: Path) -> Path:
    """Blocks of the OpenMetrics ``text``, in a new directory under ``root``."""
    source, out = root / "world.om", root / "world-blocks"
    source.write_text(text)
    run_promtool("tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(out), cwd=root)
    return out


RECORDED = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]*")


def recording_levels(groups: list[dict]) -> list[list[dict]]:
    """Rule groups split by how many recordings deep their rules read: level 0 reads raw series only,
    level n reads a recording of level n - 1. Alerts are left out (the backfiller ignores them)."""
    level: dict[str, int] = {}
    rules = [(g, r) for g in groups for r in g.get("rules", []) if "record" in r]
    pending = list(rules)
    while pending:
        names = {r["record"] for _, r in pending}
        ready = [(g, r) for g, r in pending if not (set(RECORDED.findall(r["expr"])) & names)]
        if not ready:
            raise Failure(f"recording rules read each other in a cycle: {sorted(names)}")
        for g, r in ready:
            level[r["record"]] = max(level.get(r["record"], 0), 1 + max(
                (level.get(n, -1) for n in RECORDED.findall(r["expr"])), default=-1))
        pending = [x for x in pending if x not in ready]
    depth = max(level.values(), default=-1) + 1
    out: list[list[dict]] = []
    for n in range(depth):
        layer = []
        for g in groups:
            mine = [r for r in g.get("rules", []) if "record" in r and level[r["record"]] == n]
            if mine:
                layer.append({**{k: v for k, v in g.items() if k != "rules"}, "rules": mine})
        out.append(layer)
    return out


def backfill_recordings(server: Server, windows: list[tuple[list[dict], int, int]], root: Path) -> None:
    """Recording rules evaluated over each (groups, start, end) window, one level at a time.

    Every level of a window is written to a file of the same name (``<k>.yaml``, in a directory per level), so
    each group is evaluated at the same instants at every level. Prometheus offsets a group's evaluations
    within the interval by a hash of the group's name and file, and a rule reads an earlier rule of its own
    group at the same instant; were the levels' files named apart, a level would read the level below from up
    to a minute earlier, mixing instants (an SLO's ``requests - fast`` at the edge of a filling 1h window).
    """
    levels = [(recording_levels(groups), start, end) for groups, start, end in windows]
    depth = max((len(lv) for lv, _, _ in levels), default=0)
    for n in range(depth):
        out, here = root / f"rules-{n}-blocks", root / f"rules-{n}"
        here.mkdir(exist_ok=True)
        for k, (lv, start, end) in enumerate(levels):
            if n >= len(lv) or not lv[n]:
                continue
            rules = here / f"{k}.yaml"
            rules.write_text(yaml.safe_dump({"groups": lv[n]}, sort_keys=False))
            run_promtool("tsdb", "create-blocks-from", "rules", "--quiet", f"--url={server.url}",
                         f"--start={start}", f"--end={end}", "--eval-interval=1m", f"--output-dir={out}",
                         rules.name, cwd=here)
        if out.exists():
            server.add_blocks(out)
            server.restart()
