"""``obsgen diff --prometheus``: the old and the new version of a changed alert evaluated on a real Prometheus
holding known data (backfilled with ``promtool tsdb create-blocks-from openmetrics``), at a fixed time.

The data: six hours of maple's equipment L1 cache recordings, one sample a minute. The hit ratio is 0.95
except two dips: 0.6 for 40 minutes and 0.3 for 30 minutes. CacheHitRateLow (``< 0.8`` for 15m) fires on
both: 25 + 15 = 40 minutes. Loosened to ``< 0.4`` it fires on the deep dip only: 15 minutes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT, tool
from e2e.harness import Proc, free_port, http, wait_until
from obsgen.cli import main

pytestmark = pytest.mark.e2e

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
MINUTES = 360
LABELS = 'cache="equipment",instance="app-1:8080",service="maple-expectation",tier="L1"'


def hit_ratio(minute: int) -> float:
    if 60 <= minute < 100:
        return 0.6
    if 180 <= minute < 210:
        return 0.3
    return 0.95


def openmetrics() -> str:
    lines = ["# TYPE instance_cache:hit:ratio_rate5m gauge"]
    lines += [f"instance_cache:hit:ratio_rate5m{{{LABELS}}} {hit_ratio(m)} {T0 + 60 * m}" for m in range(MINUTES)]
    lines += ["# TYPE instance_cache:requests:rate5m gauge"]
    lines += [f"instance_cache:requests:rate5m{{{LABELS}}} 50 {T0 + 60 * m}" for m in range(MINUTES)]
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    root = tmp_path_factory.mktemp("backtest")
    (root / "data.om").write_text(openmetrics())
    proc = Proc("promtool", [tool("promtool"), "tsdb", "create-blocks-from", "openmetrics", "data.om", "data"], root)
    proc.start()
    assert proc.popen.wait(120) == 0, proc.tail()
    port = free_port()
    server = Proc("prometheus", [tool("prometheus"), f"--config.file={root / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={root / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                                 "--log.level=warn"], root, port)
    (root / "prometheus.yml").write_text("global: {}\n")
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http(f"{url}/-/ready"), 30, "Prometheus to be ready", server)
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sides(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("backtest-builds")
    maple = (ROOT / "specs" / "maple.yaml").read_text()
    out = []
    for name, text in (("old", maple), ("new", maple.replace("hit_rate_min: 0.8}", "hit_rate_min: 0.4}", 1))):
        (root / f"{name}.yaml").write_text(text)
        assert CliRunner().invoke(main, ["build", str(root / f"{name}.yaml"), "--out", str(root / name)]).exit_code == 0
        out.append(root / name)
    return out[0], out[1]


def backtest(sides, *args: str):
    return CliRunner().invoke(main, ["diff", str(sides[0]), str(sides[1]), *args])


def test_old_and_new_thresholds_replayed_on_real_data(prometheus, sides):
    result = backtest(sides, "--prometheus", prometheus, "--lookback", "6h", "--at", str(T0 + 60 * (MINUTES - 1)),
                      "--format", "json")
    assert result.exit_code == 0, result.stderr
    (alert,) = json.loads(result.stdout)["services"][0]["alerts"]
    assert alert["backtest"] == {"prometheus": prometheus, "lookback": "6h", "error": None,
                                 "old": {"firings": 2, "minutes_firing": 40.0},
                                 "new": {"firings": 1, "minutes_firing": 15.0}, "missing": [], "step_seconds": 60}


def test_a_window_opening_inside_a_dip_counts_the_alert_already_firing_then(prometheus, sides):
    """The window opens at minute 90, 30 minutes into the first dip: Prometheus's alert has fired since minute 75
    and keeps firing until 100 (10 minutes inside the window); the second dip adds its 15."""
    result = backtest(sides, "--prometheus", prometheus, "--lookback", "269m", "--at", str(T0 + 60 * (MINUTES - 1)),
                      "--format", "json")
    (alert,) = json.loads(result.stdout)["services"][0]["alerts"]
    assert (alert["backtest"]["old"], alert["backtest"]["new"]) == ({"firings": 2, "minutes_firing": 25.0},
                                                                    {"firings": 1, "minutes_firing": 15.0})


def test_the_comment_says_it_in_words(prometheus, sides):
    result = backtest(sides, "--prometheus", prometheus, "--lookback", "6h", "--at", "2026-01-01T05:59:00Z",
                      "--format", "markdown")
    assert result.exit_code == 0, result.stderr
    assert (f"<br>over the last 6h of http://127.0.0.1:{prometheus.rsplit(':', 1)[1]}: old fired 2× (40 min firing), "
            "new fired 1× (15 min firing) |") in result.stdout


def test_a_window_before_the_data_fires_nothing_and_says_the_counts_mean_nothing(prometheus, sides):
    at = ("--prometheus", prometheus, "--lookback", "1h", "--at", str(T0 - 3600))
    result = backtest(sides, *at, "--format", "json")
    (alert,) = json.loads(result.stdout)["services"][0]["alerts"]
    assert alert["backtest"]["old"] == alert["backtest"]["new"] == {"firings": 0, "minutes_firing": 0.0}
    selectors = [f'instance_cache:{m}{{cache="equipment", service="maple-expectation", tier="L1"}}'
                 for m in ("hit:ratio_rate5m", "requests:rate5m")]
    assert alert["backtest"]["missing"] == selectors
    comment = backtest(sides, *at, "--format", "markdown").stdout
    assert (f"new fired 0× (0 min firing); but `{selectors[0]}`, `{selectors[1]}` held no series there, so these "
            "counts say nothing: load the service's recording rules into that Prometheus") in comment


def test_an_unreachable_prometheus_is_invalid_input(sides):
    url = f"http://127.0.0.1:{free_port()}"
    result = backtest(sides, "--prometheus", url)
    assert result.exit_code == 2 and result.stderr.startswith(f"obsgen: --prometheus {url}: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "error"), [(("--prometheus", "http://x", "--lookback", "soon"), "--lookback soon"),
                                             (("--prometheus", "http://x", "--at", "yesterday"), "'--at'"),
                                             (("--at", "1767225600"), "--at needs --prometheus URL")])
def test_bad_backtest_options_are_invalid_input(sides, args, error):
    result = backtest(sides, *args)
    assert result.exit_code == 2 and error in result.stderr
