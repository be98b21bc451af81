"""The command line keeps click's conventions without importing click: usage errors exit 2 with
``Usage``/``Try``/``Error`` lines, help exits 0, and the entry point runs as a console script."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import ROOT
from obsgen.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(("args", "usage", "error"), [
    ((), "Usage: obsgen [OPTIONS] COMMAND [ARGS]...", None),
    (("frob",), "Usage: obsgen [OPTIONS] COMMAND [ARGS]...", "Error: No such command 'frob'."),
    (("--frob",), "Usage: obsgen [OPTIONS] COMMAND [ARGS]...", "Error: No such option '--frob'."),
    (("build",), "Usage: obsgen build [OPTIONS] SPECS...", "Error: Missing argument 'SPECS...'."),
    (("build", "x", "--bogus"), "Usage: obsgen build [OPTIONS] SPECS...",
     "Error: No such option '--bogus'. Did you mean '--out'?"),
    (("build", "x", "--chek"), "Usage: obsgen build [OPTIONS] SPECS...",
     "Error: No such option '--chek'. Did you mean '--check'?"),
    (("build", "x", "--out"), "Usage: obsgen build [OPTIONS] SPECS...", "Error: Option '--out' requires an argument."),
    (("build", "x", "--jobs", "0"), "Usage: obsgen build [OPTIONS] SPECS...",
     "Error: Invalid value for '--jobs': 0 is not in the range x>=1."),
    (("build", "x", "-j", "two"), "Usage: obsgen build [OPTIONS] SPECS...",
     "Error: Invalid value for '--jobs': 'two' is not a valid integer."),
    (("build", "x", "--check=yes"), "Usage: obsgen build [OPTIONS] SPECS...",
     "Error: Option '--check' does not take a value."),
    (("schema", "extra"), "Usage: obsgen schema [OPTIONS]", "Error: Got unexpected extra argument (extra)"),
])
def test_usage_errors_exit_2_the_way_click_reported_them(args, usage, error):
    result = run(*args)
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == usage
    if error:
        command = f"obsgen {args[0]}" if args[0] in ("build", "schema", "validate") else "obsgen"
        assert lines[1:] == [f"Try '{command} --help' for help.", "", error]
    else:
        assert "Commands:" in result.stderr


@pytest.mark.parametrize("args", [("--help",), ("-h",), ("build", "--help"), ("validate", "-h"), ("schema", "--help")])
def test_help_goes_to_stdout_and_exits_0(args):
    result = run(*args)
    assert result.exit_code == 0 and result.stdout.startswith("Usage: obsgen") and "-h, --help" in result.stdout


def test_build_help_documents_jobs_and_its_default():
    out = run("build", "--help").stdout
    assert "-j, --jobs N" in out and "[default: the number of CPUs]" in out and "[default: generated]" in out


def test_options_take_inline_values_and_double_dash_ends_options(tmp_path):
    result = run("build", f"--out={tmp_path / 'out'}", "--jobs=1", "--", str(ROOT / "specs" / "maple.yaml"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out" / "maple-expectation" / "prometheus" / "rules.yaml").exists()


def test_console_entry_point_runs_without_importing_click(tmp_path):
    code = ("import sys; from obsgen.cli import main\n"
            "try:\n    main(['validate', sys.argv[1]])\n"
            "except SystemExit as e:\n    assert 'click' not in sys.modules; raise\n")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "specs" / "maple.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "obsgen: 1 spec(s) valid\n", proc.stderr
    proc = subprocess.run([sys.executable, "-m", "obsgen", "validate"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Error: Missing argument 'SPECS...'." in proc.stderr


def test_the_parser_tells_given_options_from_defaults():
    from obsgen.cli import COMMANDS, _parse

    values = _parse(COMMANDS["build"], ["specs", "--check", "-j", "3"])
    assert values["given"] == {"check", "jobs"} and values["out"] == "generated" and values["specs"] == ["specs"]
