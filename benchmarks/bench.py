#!/usr/bin/env python3
"""obsgen benchmarks (issues 9 and 17): how fast one spec builds, how a fleet scales, what its tests cost.

``make bench`` runs this. Every figure is the median of repeated runs of the real
``obsgen`` command in a fresh process (the way a pre-commit hook or CI calls it),
printed as two tables (measurements; issue 17's targets, each a ratio measured in
this run, with met or MISSED) and written to a JSON file (``--json``) so runs can
be compared. The fleets come from ``fleetgen.py`` (seeded: the same specs every
run; the 100-spec fleet is the first tenth of the 1000-spec one).

What is measured:

* two floors, each run alternately with what it is the floor of (round by round, so
  load on the machine hits both alike): ``python -c "import yaml, jinja2, jsonschema,
  grafanalib.core, click"`` (the libraries a build needs) for the cold build, and
  ``python -c "import yaml"`` for the no-change build and ``--check``;
* a cold build of specs/maple.yaml into an empty directory (fresh process, empty
  output, no skip cache; Python's bytecode cache and obsgen's compiled runbook
  templates warm, as after any install and first run); target <= 1.5x the import floor;
* the no-change build a pre-commit hook runs (``obsgen build specs/maple.yaml`` in a
  repository whose generated/ and skip cache are up to date) and ``build --check`` of
  maple with the local skip cache: each <= 2x ``import yaml``; ``--check`` without the
  cache (CI on a fresh clone) is shown too;
* cold fleet builds of N specs with ``--jobs`` 1 and 2: wall time, specs per second,
  and the growth from the first size to the last (linear would be N1/N0); the
  1000-spec build with ``--jobs 2`` <= 25x one cold maple build;
* a no-change rebuild and a no-change ``--check`` of the largest fleet: each < 3 s;
* peak memory of the largest build with ``--jobs 2``: the largest single process
  (``wait4`` max RSS: the parent or one worker, not their sum) and the sampled sum
  of the proportional set size (PSS) over the whole process tree (shared pages
  counted once, so this is what the build really occupies); < 500 MB;
* ``promtool test rules`` on every test file of maple (promtool's CPU, <= 0.5 s), and
  promtool's evaluation work counted from the generated files: per test entry, input
  series x evaluation steps x rules of its rule files, summed (and steps x rules alone,
  which is what promtool's time follows), for maple and the smallest fleet, with how
  that work grows with a spec's alerts across the fleet (the slope of log work over
  log alerts: 1 is linear);
* two floors under targets, which no design of obsgen can go below with the tools the issue
  keeps: promtool's own cost (its start, each test entry, each rule at each evaluation step
  with no data, measured on maple's deployed rules) times maple's stories, each entry
  counted with only the rules its checks need; and the CPU per spec that PyYAML's libyaml
  emitter, the C JSON encoder and the system need just to write out the smallest fleet's
  output from ready data (files created with their final bytes), scaled to the largest fleet
  on two whole cores and set against the cold build;
* ``obsgen verify`` of maple against a local Prometheus scraping the reference app
  (tests/e2e/refapp.py, as job maple-expectation), as a ratio to the cold build of
  the same run (its findings, Redis and the lock, which the app does not export, are expected);
* the machine's parallel capacity at start and end: how many cores two CPU-bound
  processes really get (2.0 on an idle 2-core machine), the ceiling for ``--jobs 2``.

Repeats are fewer for the big fleets (see the ``runs`` column). Other load on the
machine inflates every figure: the load average at start and end is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import fleetgen  # noqa: E402

MAPLE = ROOT / "specs" / "maple.yaml"
IMPORT_FLOOR = "import yaml, jinja2, jsonschema, grafanalib.core, click"
# Issue 17: each a ratio (or a limit) measured in this run.
TARGETS = {
    "cold_maple_ratio": (1.5, "x the import floor", "cold build of maple"),
    "fleet_1000_ratio": (25.0, "x one cold maple build", "cold fleet of 1000 specs, --jobs 2"),
    "fleet_growth_ratio": (1.15, "x linear", "CPU growth from the smallest fleet to the largest"),
    "nochange_maple_ratio": (2.0, 'x python -c "import yaml"', "no-change build of maple"),
    "check_maple_ratio": (2.0, 'x python -c "import yaml"', "build --check of maple, skip cache"),
    "nochange_1000_s": (3.0, " s", "no-change build of 1000 specs"),
    "check_1000_s": (3.0, " s", "build --check of 1000 specs, skip cache"),
    "peak_memory_mb": (500.0, " MB", "peak memory, largest fleet build"),
    "promtool_maple_cpu_s": (0.5, " s of promtool CPU", "promtool test rules, maple"),
    "promtool_work_slope": (1.0, " (1: linear)", "promtool work over a spec's alerts, fleet"),
    "verify_maple_ratio": (2.0, "x the cold build", "verify of maple, local Prometheus"),
}


# --------------------------------------------------------------------------- running and measuring


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def parallel_capacity(seconds: float = 2.0) -> float:
    """How many cores two CPU-bound processes really get here: 2.0 on an idle 2-core machine,
    about 1.0 when other load (or the hypervisor) leaves only one. ``--jobs 2`` cannot beat it."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_spin, args=(seconds,)) for _ in range(2)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return 2 * seconds / (time.perf_counter() - start)


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def _pss_kb(pid: int) -> int:
    for name, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            with open(name) as f:
                for line in f:
                    if line.startswith(key):
                        return int(line.split()[1])
        except OSError:
            continue
    return 0


class TreeMemory(threading.Thread):
    """Samples the summed PSS of a process and its descendants every 50 ms; keeps the peak."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            todo, total = [self.pid], 0
            while todo:
                pid = todo.pop()
                total += _pss_kb(pid)
                todo += _children(pid)
            self.peak_kb = max(self.peak_kb, total)


def run(cmd: list[str], *, env: dict, cwd: Path | None = None, memory: bool = False) -> dict:
    """One run: wall seconds, exit code, max RSS of the largest process (MB), peak tree PSS (MB)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=cwd)
        sampler = TreeMemory(proc.pid) if memory and sys.platform == "linux" else None
        if sampler:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if sampler:
            sampler.done.set()
            sampler.join()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    out = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rc": proc.returncode,
           "max_rss_mb": usage.ru_maxrss / 1024}
    if sampler:
        out["peak_tree_pss_mb"] = sampler.peak_kb / 1024
    if proc.returncode not in (0,):
        out["stderr"] = stderr[-2000:]
    return out


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.obsgen = shlex.split(args.obsgen) if args.obsgen else _default_obsgen()
        self.python = args.python or sys.executable
        self.env = dict(os.environ)
        if not args.keep_env:
            # Measure obsgen as installed: with its bytecode cache (an editable install under
            # PYTHONDONTWRITEBYTECODE=1 would compile every module on every run).
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.work = Path(tempfile.mkdtemp(prefix="obsgen-bench-"))
        self.results: dict[str, dict] = {}
        self.work_of: dict[str, dict] = {}
        self.floors: dict[str, dict] = {}
        self.has_jobs = "--jobs" in subprocess.run(self.obsgen + ["build", "--help"], capture_output=True,
                                                   text=True, env=self.env, cwd=self.work).stdout
        self._n = 0

    def fresh(self, name: str) -> Path:
        self._n += 1
        return self.work / f"{name}-{self._n}"

    def series(self, key: str, label: str, make_cmd, repeats: int, *, prepare=None, cwd=None,
               memory: bool = False, expect_rc: int = 0, note: str = "") -> dict:
        return self.rounds([(key, label, make_cmd, dict(prepare=prepare, cwd=cwd, memory=memory,
                                                         expect_rc=expect_rc, note=note))], repeats)[key]

    def rounds(self, measurements: list[tuple], repeats: int) -> dict[str, dict]:
        """Run each measurement ``(key, label, make_cmd, options)`` once per round, ``repeats`` rounds: what is
        compared in a ratio runs side by side, so load on the machine weighs on both alike."""
        runs: dict[str, list[dict]] = {key: [] for key, *_ in measurements}
        for _ in range(repeats):
            for key, label, make_cmd, opts in measurements:
                if opts.get("prepare"):
                    opts["prepare"]()
                # Never the repository as working directory: `python -m obsgen` would import ./obsgen
                # whatever --obsgen says (PYTHONPATH comes after the script directory).
                r = run(make_cmd(), env=self.env, cwd=opts.get("cwd") or self.work, memory=opts.get("memory", False))
                if r["rc"] != opts.get("expect_rc", 0):
                    raise SystemExit(f"bench: {label}: exit {r['rc']} (expected {opts.get('expect_rc', 0)})\n"
                                     f"{r.get('stderr', '')}")
                runs[key].append(r)
        out = {}
        for key, label, _, opts in measurements:
            walls = [r["wall_s"] for r in runs[key]]
            entry = {"label": label, "median_s": statistics.median(walls), "runs_s": walls, "repeats": repeats,
                     "cpu_median_s": statistics.median(r["cpu_s"] for r in runs[key]),
                     "max_rss_mb": max(r["max_rss_mb"] for r in runs[key])}
            if opts.get("memory"):
                entry["peak_tree_pss_mb"] = max(r["peak_tree_pss_mb"] for r in runs[key])
            if opts.get("note"):
                entry["note"] = opts["note"]
            self.results[key] = out[key] = entry
            print(f"  {label}: {entry['median_s']:.3f} s (median of {repeats})", file=sys.stderr, flush=True)
        return out

    def build_cmd(self, spec: Path, out: Path, *extra: str, jobs: int | None = None) -> list[str]:
        jobs_flag = ["--jobs", str(jobs)] if (jobs and self.has_jobs) else []
        return self.obsgen + ["build", str(spec), "--out", str(out), *jobs_flag, *extra]

    # ------------------------------------------------------------------ the measurements

    def single(self) -> None:
        r = self.args.repeats
        # One build first, so that Python's bytecode cache (and obsgen's template cache, if it has one) is warm.
        subprocess.run(self.build_cmd(MAPLE, self.fresh("warm")), env=self.env, capture_output=True, cwd=self.work)
        cold = self.fresh("cold")
        self.rounds([
            ("floor_imports", f'python -c "{IMPORT_FLOOR}" (import floor)',
             lambda: [self.python, "-c", IMPORT_FLOOR], {}),
            ("cold_maple", "cold build, maple", lambda: self.build_cmd(MAPLE, cold),
             dict(prepare=lambda: shutil.rmtree(cold, ignore_errors=True))),
        ], r)
        tree = self.fresh("maple")
        subprocess.run(self.build_cmd(MAPLE, tree), env=self.env, check=True, capture_output=True, cwd=self.work)
        # The pre-commit hook's command as typed in a GitOps repository: relative spec, default --out.
        repo = self.fresh("hook")
        (repo / "specs").mkdir(parents=True)
        shutil.copy(MAPLE, repo / "specs" / "maple.yaml")
        hook = lambda: self.obsgen + ["build", "specs/maple.yaml"]  # noqa: E731
        subprocess.run(hook(), env=self.env, check=True, capture_output=True, cwd=repo)
        self.rounds([
            ("floor", 'python -c "import yaml" (floor)', lambda: [self.python, "-c", "import yaml"], {}),
            ("nochange_maple", "no-change build, maple (pre-commit hook: obsgen build specs/maple.yaml)", hook,
             dict(cwd=repo)),
            ("check_maple_cache", "build --check, maple up to date (local skip cache)",
             lambda: self.build_cmd(MAPLE, tree, "--check"), {}),
        ], r)
        self.series("check_maple_nocache", "build --check, maple up to date (no cache: CI clone)",
                    lambda: self.build_cmd(MAPLE, tree, "--check"), r,
                    prepare=lambda: shutil.rmtree(tree / ".obsgen-cache", ignore_errors=True))
        prom = tree / "maple-expectation" / "prometheus"
        tests = sorted(p.name for p in prom.glob("*.test.yaml"))
        self.series("promtool_maple", f"promtool test rules, maple's generated tests ({len(tests)} files)",
                    lambda: [shutil.which("promtool") or "promtool", "test", "rules", *tests], r, cwd=prom)
        self.work_of["maple"] = promtool_work(prom)
        self.promtool_floor(prom)

    def promtool_floor(self, prom: Path) -> None:
        """What promtool itself costs, whatever the test files say: its start, each test entry (a fresh
        TSDB and the rule files loaded again), and each rule at each evaluation step with no data at all,
        measured on maple's deployed rules. With the evaluation work of maple's stories counted with only
        the rules each entry's checks need, this bounds from below what any packing of them can cost."""
        work = self.fresh("promtool-floor")
        work.mkdir()
        (work / "none.yaml").write_text("groups: []\n")
        deployed = sorted(p.name for p in prom.glob("*.yaml") if not p.name.endswith(".test.yaml"))
        for name in deployed:
            shutil.copy(prom / name, work / name)
        rules = sum(len(rules_in(work / name)) for name in deployed)
        steps = 200

        def test_file(name: str, rule_files: list[str], entries: int, last: int) -> list[str]:
            entry = {"interval": "1m", "input_series": [],
                     "alert_rule_test": [{"eval_time": f"{last}m", "alertname": "Nothing", "exp_alerts": []}]}
            (work / name).write_text(json.dumps({"rule_files": rule_files, "evaluation_interval": "1m",
                                                 "tests": [entry] * entries}))
            return [shutil.which("promtool") or "promtool", "test", "rules", name]

        files = {"one": test_file("one.yaml", ["none.yaml"], 1, 0),
                 "many": test_file("many.yaml", ["none.yaml"], 41, 0),
                 "idle": test_file("idle.yaml", ["none.yaml"], 1, steps - 1),
                 "busy": test_file("busy.yaml", deployed, 1, steps - 1)}
        got = self.rounds([(f"promtool_floor_{k}", f"promtool floor: {label}", lambda cmd=cmd: cmd, dict(cwd=work))
                           for (k, cmd), label in zip(files.items(), (
                               "one empty test entry", "41 empty test entries", f"{steps} steps, no rules",
                               f"{steps} steps of maple's {rules} rules, no data"))], self.args.repeats)
        cpu = {k: got[f"promtool_floor_{k}"]["cpu_median_s"] for k in files}
        w = self.work_of["maple"]
        self.floors["promtool"] = floor = {
            "start_s": cpu["one"], "per_entry_ms": 1000 * (cpu["many"] - cpu["one"]) / 40,
            "per_rule_step_us": 1e6 * (cpu["busy"] - cpu["idle"]) / (steps * rules)}
        floor["maple_s"] = (floor["start_s"] + w["entries"] * floor["per_entry_ms"] / 1000
                            + w["needed_steps_rules"] * floor["per_rule_step_us"] / 1e6)

    def verify(self) -> None:
        """``obsgen verify`` of maple against a real Prometheus that has scraped the reference app."""
        work = self.fresh("verify")
        work.mkdir()
        port_file, port = work / "app-port", _free_port()
        app = subprocess.Popen([self.python, str(ROOT / "tests" / "e2e" / "refapp.py"), "--port-file", str(port_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        prometheus = None
        try:
            deadline = time.monotonic() + 15
            while not port_file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            (work / "prometheus.yml").write_text(
                "global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n  - job_name: maple-expectation\n"
                f"    static_configs: [{{targets: ['127.0.0.1:{port_file.read_text()}']}}]\n")
            prometheus = subprocess.Popen([shutil.which("prometheus") or "prometheus",
                                           f"--config.file={work / 'prometheus.yml'}",
                                           f"--storage.tsdb.path={work / 'data'}",
                                           f"--web.listen-address=127.0.0.1:{port}"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            query = url + "/api/v1/query?query=up%7Bjob%3D%22maple-expectation%22%7D"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if json.loads(urllib.request.urlopen(query, timeout=2).read())["data"]["result"]:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            else:
                raise SystemExit("bench: Prometheus did not scrape the reference app within 30s")
            self.series("verify_maple", "verify, maple against a local Prometheus",
                        lambda: self.obsgen + ["verify", str(MAPLE), "--prometheus", url], self.args.repeats,
                        expect_rc=1)
        finally:
            for proc in (prometheus, app):
                if proc:
                    proc.terminate()
                    proc.wait(10)

    def fleets(self) -> None:
        sizes = self.args.sizes
        specs = {n: self.work / f"fleet-{n}" for n in sizes}
        for n, directory in specs.items():
            fleetgen.generate(n, directory, seed=self.args.seed)
        biggest, smallest = max(sizes), min(sizes)
        valid = subprocess.run(self.obsgen + ["validate", str(specs[biggest])], env=self.env, capture_output=True,
                               text=True, cwd=self.work)
        if valid.returncode != 0:
            raise SystemExit(f"bench: the generated fleet does not validate:\n{valid.stderr[-3000:]}")
        for n in sizes:
            repeats = self.args.big_repeats if n == biggest else self.args.fleet_repeats
            for jobs in (1, 2):
                if jobs == 2 and not self.has_jobs:
                    continue
                out = self.fresh(f"fleet{n}")
                entry = self.series(f"fleet_{n}_jobs{jobs}", f"cold fleet build, {n} specs, --jobs {jobs}",
                                    lambda: self.build_cmd(specs[n], out, jobs=jobs), repeats,
                                    prepare=lambda: shutil.rmtree(out, ignore_errors=True), memory=(n == biggest))
                entry["specs_per_s"] = n / entry["median_s"]
                if n == smallest and jobs == 1:
                    self.work_of[f"fleet_{n}"] = promtool_work(*sorted(out.glob("*/prometheus")))
                    self.floors["output"] = output_floor(out, n)
                shutil.rmtree(out, ignore_errors=True)
        tree = self.fresh("fleet-tree")
        subprocess.run(self.build_cmd(specs[biggest], tree, jobs=2), env=self.env, check=True, capture_output=True,
                       cwd=self.work)
        self.series(f"nochange_{biggest}", f"no-change rebuild, {biggest} specs",
                    lambda: self.build_cmd(specs[biggest], tree, jobs=2), self.args.fleet_repeats)
        self.series(f"check_{biggest}", f"build --check, {biggest} specs up to date (local skip cache)",
                    lambda: self.build_cmd(specs[biggest], tree, "--check", jobs=2), self.args.fleet_repeats)
        shutil.rmtree(tree, ignore_errors=True)

    # ------------------------------------------------------------------ report

    def report(self) -> dict:
        res, sizes = self.results, self.args.sizes
        small, big = min(sizes), max(sizes)

        def ratio(a: str, b: str) -> float | None:
            return res[a]["median_s"] / res[b]["median_s"] if a in res and b in res else None

        derived: dict = {"cold_maple_ratio": ratio("cold_maple", "floor_imports"),
                         "nochange_maple_ratio": ratio("nochange_maple", "floor"),
                         "check_maple_ratio": ratio("check_maple_cache", "floor"),
                         "fleet_1000_ratio": ratio("fleet_1000_jobs2", "cold_maple"),
                         "verify_maple_ratio": ratio("verify_maple", "cold_maple")}
        for jobs in (1, 2):
            a, b = res.get(f"fleet_{small}_jobs{jobs}"), res.get(f"fleet_{big}_jobs{jobs}")
            if a and b and big != small:
                derived[f"growth_jobs{jobs}"] = b["median_s"] / a["median_s"]
                derived[f"growth_cpu_jobs{jobs}"] = b["cpu_median_s"] / a["cpu_median_s"]
        derived["growth_linear"] = big / small
        growth = [derived[k] for k in ("growth_cpu_jobs1", "growth_cpu_jobs2") if k in derived]
        mem = res.get(f"fleet_{big}_jobs2") or res.get(f"fleet_{big}_jobs1") or {}
        fleet_work = self.work_of.get(f"fleet_{small}", {})
        measured = {
            **{k: derived[k] for k in ("cold_maple_ratio", "fleet_1000_ratio", "nochange_maple_ratio",
                                       "check_maple_ratio", "verify_maple_ratio")},
            "fleet_growth_ratio": max(growth) / derived["growth_linear"] if growth else None,
            "nochange_1000_s": res.get("nochange_1000", {}).get("median_s"),
            "check_1000_s": res.get("check_1000", {}).get("median_s"),
            "peak_memory_mb": mem.get("peak_tree_pss_mb"),
            "promtool_maple_cpu_s": res.get("promtool_maple", {}).get("cpu_median_s"),
            "promtool_work_slope": fleet_work.get("slope"),
        }
        met = {k: (None if v is None else v <= TARGETS[k][0]) for k, v in measured.items()}
        floors = {k: dict(v) for k, v in self.floors.items()}
        if "promtool" in floors:
            floors["promtool_maple_cpu_s"] = floors["promtool"]["maple_s"]
        if "output" in floors and "cold_maple" in res:  # the big fleet's output, written on two perfect cores
            o = floors["output"]
            fleet_s = (o["yaml_ms_per_spec"] + o["json_ms_per_spec"] + o["files_ms_per_spec"]) / 1000 * big / 2
            floors[f"fleet_{big}_ratio"] = fleet_s / res["cold_maple"]["median_s"]
        return {"derived": derived, "targets": {k: t[0] for k, t in TARGETS.items()}, "measured": measured,
                "met": met, "promtool_work": self.work_of, "floors": floors}

    def table(self, summary: dict) -> str:
        res, d = self.results, summary["derived"]
        sizes = self.args.sizes
        big = max(sizes)
        rows = []
        for key, entry in res.items():
            note = []
            if key == "cold_maple":
                note.append(f"{d['cold_maple_ratio']:.2f}x the import floor")
            if key in ("nochange_maple", "check_maple_cache"):
                note.append(f"{res[key]['median_s'] / res['floor']['median_s']:.2f}x import yaml")
            if "specs_per_s" in entry:
                note.append(f"{entry['specs_per_s']:.1f} specs/s")
            if key == "fleet_1000_jobs2" and d.get("fleet_1000_ratio"):
                note.append(f"{d['fleet_1000_ratio']:.0f}x the cold maple build")
            for jobs in (1, 2):
                if key == f"fleet_{big}_jobs{jobs}" and f"growth_jobs{jobs}" in d:
                    note.append(f"{d[f'growth_jobs{jobs}']:.1f}x the {min(sizes)}-spec time, "
                                f"{d[f'growth_cpu_jobs{jobs}']:.1f}x its CPU (linear: {d['growth_linear']:.0f}x)")
            if key == "promtool_maple" and "maple" in self.work_of:
                w = self.work_of["maple"]
                note.append(f"{w['entries']} test entries, {w['steps_rules']:,} steps x rules, "
                            f"{w['series_steps_rules']:,} series x steps x rules")
            if key == "verify_maple":
                note.append(f"{d['verify_maple_ratio']:.2f}x the cold build")
            rows.append((entry["label"], f"{entry['median_s']:.3f} s", f"{entry['cpu_median_s']:.2f} s",
                         str(entry["repeats"]), "; ".join(note)))
        mem = res.get(f"fleet_{big}_jobs2") or res.get(f"fleet_{big}_jobs1")
        if mem:
            rows.append((f"peak memory, {big}-spec build ({mem['label'].split(', ')[-1]})",
                         f"{mem['peak_tree_pss_mb']:.0f} MB", "", str(mem["repeats"]),
                         f"sum of PSS over all processes; largest single process {mem['max_rss_mb']:.0f} MB RSS"))
        for name, w in self.work_of.items():
            if name.startswith("fleet_"):
                rows.append((f"promtool work, {name.split('_')[1]}-spec fleet", f"{w['steps_rules']:,}", "", "1",
                             f"steps x rules over {w['entries']} test entries of {w['alerts']} alerts "
                             f"({w['series_steps_rules']:,} series x steps x rules); per spec it grows as alerts^"
                             f"{w['slope']:.2f}"))
        lines = _grid(("measurement", "wall (median)", "CPU", "runs", "notes"), rows)
        targets = []
        for key, (limit, unit, what) in TARGETS.items():
            value, met = summary["measured"].get(key), summary["met"].get(key)
            if value is None:
                continue
            targets.append((what, f"{value:.2f}{unit}", f"<= {limit:g}{unit}", "met" if met else "MISSED"))
        return "\n".join(lines + [""] + _grid(("issue 17 target", "measured", "target", ""), targets)
                         + self.floor_table(summary))

    def floor_table(self, summary: dict) -> list[str]:
        """The targets set below what the chosen tools cost whatever obsgen does, with those floors."""
        floors, rows = summary["floors"], []
        if "promtool_maple_cpu_s" in floors:
            f, w = floors["promtool"], self.work_of["maple"]
            limit = TARGETS["promtool_maple_cpu_s"][0]
            rows.append(("promtool test rules, maple", f"{floors['promtool_maple_cpu_s']:.2f} s", f"<= {limit:g} s",
                         f"{floors['promtool_maple_cpu_s'] / limit:.0%} of the target",
                         f"start {f['start_s']:.2f} s + {w['entries']} entries x {f['per_entry_ms']:.1f} ms + "
                         f"{w['needed_steps_rules']:,} steps x rules the checks need (of {w['steps_rules']:,} "
                         f"evaluated) x {f['per_rule_step_us']:.0f} us"))
        key = next((k for k in floors if k.startswith("fleet_") and k.endswith("_ratio")), None)
        if key:
            o, limit = floors["output"], TARGETS["fleet_1000_ratio"][0]
            rows.append((f"cold fleet of {key.split('_')[1]} specs, --jobs 2", f"{floors[key]:.0f}x", f"<= {limit:g}x",
                         f"{floors[key] / limit:.0%} of the target",
                         f"writing its output only, on 2 whole cores: libyaml {o['yaml_ms_per_spec']:.1f} ms + C JSON "
                         f"{o['json_ms_per_spec']:.1f} ms + creating {o['files_per_spec']:.0f} files "
                         f"{o['files_ms_per_spec']:.1f} ms per spec ({o['bytes_per_spec'] / 1000:.0f} KB)"))
        if not rows:
            return []
        return [""] + _grid(("floor under a target", "floor", "target", "floor/target", "what the floor is"), rows)


def _grid(head: tuple, rows: list[tuple]) -> list[str]:
    """A plain-text table: every column padded but the last."""
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head) - 1)]

    def fmt(r: tuple) -> str:
        cells = [f"{r[0]:<{widths[0]}}"] + [f"{c:>{w}}" for c, w in zip(r[1:-1], widths[1:])] + [r[-1]]
        return "  ".join(cells).rstrip()

    return [fmt(head), "-" * (sum(widths) + 2 * len(widths) + 5)] + [fmt(r) for r in rows]


_DURATION = re.compile(r"([0-9.]+)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _seconds(text: str) -> float:
    return sum(float(n) * _SECONDS[u] for n, u in _DURATION.findall(text))


_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _needed(rules: list[dict], entry: dict) -> int:
    """How many of ``rules`` a test entry's checks need: the alerts it names and the recordings they (or its
    PromQL checks) read, directly or through other recordings. promtool evaluates them all at every step."""
    recorders: dict[str, list[int]] = {}
    for i, r in enumerate(rules):
        if "record" in r:
            recorders.setdefault(r["record"], []).append(i)
    names = {t["alertname"] for t in entry.get("alert_rule_test", [])}
    todo = [i for i, r in enumerate(rules) if r.get("alert") in names]
    todo += [i for t in entry.get("promql_expr_test", []) for n in _NAME.findall(t["expr"]) for i in recorders.get(n, [])]
    needed: set[int] = set()
    while todo:
        i = todo.pop()
        if i not in needed:
            needed.add(i)
            todo += [j for n in _NAME.findall(rules[i]["expr"]) for j in recorders.get(n, [])]
    return len(needed)


def promtool_work(*prometheus_dirs: Path) -> dict:
    """promtool's evaluation work in generated test files, counted from the files.

    promtool evaluates every rule of a test file's rule files at every evaluation step
    of every test entry, up to its last ``eval_time``: ``steps x rules`` per entry is
    what its time follows, ``series x steps x rules`` the issue's measure. ``slope`` is
    how per-directory work grows with its alerts (least squares over log-log; 1 is
    linear), when there are several directories.
    """
    import math

    total = {"entries": 0, "steps_rules": 0, "series_steps_rules": 0, "needed_steps_rules": 0, "alerts": 0}
    points = []

    for prom in prometheus_dirs:
        alerts = sum(1 for p in prom.glob("*.yaml") if not p.name.endswith(".test.yaml")
                     for r in rules_in(p) if "alert" in r)
        work = 0
        for test_file in prom.glob("*.test.yaml"):
            doc = _yaml(test_file)
            loaded = [r for f in doc["rule_files"] for r in rules_in(prom / f)]
            rules = len(loaded)
            interval = _seconds(doc.get("evaluation_interval", "1m"))
            for entry in doc["tests"]:
                last = max([_seconds(t["eval_time"]) for t in entry.get("alert_rule_test", [])] +
                           [_seconds(t["eval_time"]) for t in entry.get("promql_expr_test", [])])
                steps = int(last // interval) + 1
                total["entries"] += 1
                total["steps_rules"] += steps * rules
                total["series_steps_rules"] += steps * rules * len(entry["input_series"])
                total["needed_steps_rules"] += steps * _needed(loaded, entry)
                work += steps * rules
        total["alerts"] += alerts
        if alerts and work:
            points.append((math.log(alerts), math.log(work)))
    if len(points) > 2:
        mx, my = (sum(p[i] for p in points) / len(points) for i in (0, 1))
        spread = sum((x - mx) ** 2 for x, _ in points)
        total["slope"] = sum((x - mx) * (y - my) for x, y in points) / spread if spread else None
    return total


def rules_in(path: Path) -> list:
    """The rules of a rule file: a deployed one, or a component's copy its tests load."""
    return [r for g in _yaml(path).get("groups", []) for r in g["rules"]]


def _yaml(path: Path):
    import yaml

    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}


def output_floor(out: Path, specs: int, repeats: int = 3) -> dict:
    """CPU per spec that the user's libraries need only to write out what a fleet build wrote in ``out``,
    from data already made: libyaml emitting every YAML file from its ready node tree (no representer, no
    obsgen), the standard library's C encoder writing every dashboard's JSON without indentation, and the
    system creating the files with their final bytes in a fresh directory (plainly: no temporary file, no
    rename). No spec is read and no runbook rendered, so no build of these specs, in any design, costs less."""
    import yaml

    loader, dumper = getattr(yaml, "CSafeLoader", yaml.SafeLoader), getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    nodes = [yaml.compose(p.read_text(), Loader=loader) for p in files if p.suffix == ".yaml"]
    boards = [json.loads(p.read_text()) for p in files if p.suffix == ".json" and "/dashboards/" in str(p)]
    times = []
    for _ in range(repeats):
        start = time.process_time()
        for node in nodes:
            yaml.serialize(node, Dumper=dumper, allow_unicode=True, width=120)
        yaml_s = time.process_time() - start
        for board in boards:
            json.dumps(board, separators=(",", ":"))
        times.append((yaml_s, time.process_time() - start - yaml_s))
    yaml_s, json_s = min(times, key=sum)
    contents = [(p.relative_to(out), p.read_bytes()) for p in files]
    creating = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(dir=out.parent) as fresh:
            start = time.process_time()
            for rel, data in contents:
                target = os.path.join(fresh, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(data)
            creating.append(time.process_time() - start)
    return {"specs": specs, "yaml_ms_per_spec": 1000 * yaml_s / specs, "json_ms_per_spec": 1000 * json_s / specs,
            "files_ms_per_spec": 1000 * min(creating) / specs, "files_per_spec": len(files) / specs,
            "bytes_per_spec": sum(p.stat().st_size for p in files) / specs}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_obsgen() -> list[str]:
    script = Path(sys.executable).parent / "obsgen"
    return [str(script)] if script.exists() else [sys.executable, "-m", "obsgen"]


def main() -> None:
    parser = argparse.ArgumentParser(description="obsgen benchmarks (issues 9 and 17)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json", help="where to write figures")
    parser.add_argument("--label", default="current", help="a name for this run in the JSON")
    parser.add_argument("--obsgen", help="command that runs obsgen (default: the obsgen next to this Python)")
    parser.add_argument("--python", help="interpreter for the floor (default: this one)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000])
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=7, help="runs of each single-spec measurement")
    parser.add_argument("--fleet-repeats", type=int, default=3, help="runs of each smaller fleet build")
    parser.add_argument("--big-repeats", type=int, default=1, help="runs of each largest fleet build")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fleets of 20 and 100, fewer repeats")
    parser.add_argument("--keep-env", action="store_true", help="keep PYTHONDONTWRITEBYTECODE if set")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeats, args.fleet_repeats, args.big_repeats = [20, 100], 3, 1, 1
    bench = Bench(args)
    load_start = os.getloadavg()
    capacity = [parallel_capacity()]
    started = time.perf_counter()
    print(f"bench: obsgen = {' '.join(bench.obsgen)}; work dir {bench.work}", file=sys.stderr)
    try:
        bench.single()
        bench.verify()
        bench.fleets()
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
    capacity.append(parallel_capacity())
    summary = bench.report()
    data = {
        "label": args.label, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
                    "parallel_capacity_cores": capacity},
        "settings": {"sizes": args.sizes, "seed": args.seed, "repeats": args.repeats,
                     "fleet_repeats": args.fleet_repeats, "big_repeats": args.big_repeats,
                     "bytecode_cache": "PYTHONDONTWRITEBYTECODE" not in bench.env, "obsgen": bench.obsgen},
        "results": bench.results, **summary, "bench_wall_s": time.perf_counter() - started,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    print()
    print(bench.table(summary))
    print(f"\nload average {load_start[0]:.1f} at start, {data['machine']['loadavg_end'][0]:.1f} at end; two "
          f"CPU-bound processes got {capacity[0]:.2f} and {capacity[1]:.2f} cores (the ceiling for --jobs 2); "
          f"bench took {data['bench_wall_s']:.0f} s; figures in {args.json}")


if __name__ == "__main__":
    main()
