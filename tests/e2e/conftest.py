"""Session fixtures of the end-to-end tests: one stack of real servers, scenarios run side by side.

Each test waits for the result of its scenario (``@pytest.mark.scenario(name)``);
the scenarios of the selected tests start together when the first of them asks,
the healthy run first, then every other one at once in its own thread.
"""

from __future__ import annotations

import threading

import pytest

from .harness import EVAL_S, SCALE, SCRAPE_S, Failure, Stack
import time

from . import redis_scenarios  # noqa: F401 - registers the Redis scenarios
from .scenarios import NOTES, RESULTS, SCENARIO_TIMEOUT_S, SCENARIOS, SLACK_S, Ctx, note


def pytest_configure(config):
    config.addinivalue_line("markers", "scenario(name): the e2e scenario whose result the test asserts")


class Runner:
    def __init__(self, stack: Stack, names: list[str]) -> None:
        self.stack, self.names = stack, names
        self.done = {name: threading.Event() for name in names}
        self.errors: dict[str, BaseException] = {}

    def start(self) -> None:
        for name in self.names:
            threading.Thread(target=self._run, args=(name,), name=f"scenario-{name}", daemon=True).start()

    def _run(self, name: str) -> None:
        ctx = Ctx(self.stack, name, self.done)
        start = time.monotonic()
        try:
            if name != "healthy":
                ctx.after("healthy")  # faults start only once the healthy run is over
                start = time.monotonic()
            SCENARIOS[name].run(ctx)
        except BaseException as exc:  # noqa: BLE001 - handed to the test that asks for this scenario
            self.errors[name] = exc
        finally:
            note(f"scenario {name}: {'failed' if name in self.errors else 'passed'}, ran "
                 f"{start - self.stack.started:.0f}s to {time.monotonic() - self.stack.started:.0f}s after start")
            self.done[name].set()

    def result(self, name: str) -> None:
        if not self.done[name].wait(SCENARIO_TIMEOUT_S * 2):
            raise Failure(f"scenario {name} did not finish\n{self.stack.tails()}")
        if name in self.errors:
            raise self.errors[name]


def _selected(session) -> list[str]:
    names = {m.args[0] for item in session.items for m in item.iter_markers("scenario")}
    unknown = names - set(SCENARIOS)
    assert not unknown, f"unknown scenarios {unknown}"
    return sorted(names)


@pytest.fixture(scope="session")
def stack(tmp_path_factory, request):
    names = _selected(request.session)
    built = Stack(tmp_path_factory.mktemp("e2e"), {n: SCENARIOS[n].start for n in names if SCENARIOS[n].app})
    request.addfinalizer(built.stop)
    built.start()
    note(f"stack: rules built and every server up, scraped and loaded {built.ready_after:.1f}s after start")
    return built


@pytest.fixture(scope="session")
def scenarios(stack, request):
    runner = Runner(stack, _selected(request.session))
    runner.start()
    return runner


def pytest_terminal_summary(terminalreporter):
    if not RESULTS and not NOTES:
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"alert detection times (rules time-scaled by {SCALE}, scrape {SCRAPE_S:g}s, "
                             f"evaluation {EVAL_S:g}s)")
    write("fault → active (pending) and fault → seen firing; bound = for + fill + "
          f"{SLACK_S:g}s (2 evaluation intervals, watcher poll, 0.5s)")
    header = f"{'alert':<30} {'scenario':<18} {'for':>5} {'fill':>5} {'→active':>8} {'→firing':>8} {'bound':>6}  target"
    write(header)
    write("-" * len(header))
    for d in sorted(RESULTS, key=lambda d: (d.alert, d.scenario)):
        write(f"{d.alert:<30} {d.scenario:<18} {d.for_s:>4g}s {d.fill_s:>4g}s {d.to_active:>7.1f}s "
              f"{d.to_firing:>7.1f}s {d.bound:>5.1f}s  {d.target}{'' if d.ok else '  OVER BOUND'}")
    for line in NOTES:
        write(line)
