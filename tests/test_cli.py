"""The `lwdet` command and its subcommands: one dispatcher, and every command turns a missing file into one line."""

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from lwdet.cli import COMMANDS
from lwdet.cli import main as lwdet_main

ROOT = Path(__file__).resolve().parents[1]

# a command line per subcommand naming a file that does not exist ({nope} is a path under tmp_path)
MISSING = {
    "train": [["--data", "{nope}.yaml"], ["--model", "{nope}.yaml"]],
    "export": [["{nope}/weights/best.pt"], ["{nope}"]],
    "bench": [["--model", "{nope}_ncnn_model"], ["--param", "{nope}.param"], ["--all", "{nope}"]],
    "profile": [["{nope}.yaml"]],
    "parts": [["{nope}.yaml"]],
    "data": [["check", "{nope}.yaml"], ["import", "--format", "voc", "{nope}", "{nope}-out"]],
    "study": [["{nope}.yaml"]],
    "report": [["{nope}.csv"]],
    "search": [["{nope}.yaml"]],
    "sliced-eval": [["{nope}_ncnn_model", "--images", "{nope}.jpg"]],
}


def test_every_command_has_a_missing_file_case():
    assert set(MISSING) == set(COMMANDS)


@pytest.mark.parametrize(
    "name, argv",
    [(n, a) for n, cases in MISSING.items() for a in cases],
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_missing_file_is_one_line_and_exit_2(name, argv, tmp_path, capsys):
    nope = tmp_path / "nope"
    argv = [a.format(nope=nope) for a in argv]
    try:
        status = lwdet_main([name, *argv])
    except SystemExit as e:  # argparse's own exit (parse-time checks)
        status = e.code
    captured = capsys.readouterr()
    assert status == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "nope" in lines[0] and "Traceback" not in captured.err, captured.err
    assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


def _run(args, cwd=ROOT):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "lwdet", "export", "{nope}.pt"],
        ["-m", "lwdet.profile", "{nope}.yaml"],
        ["-m", "lwdet.parts", "{nope}.yaml"],
        ["-m", "lwdet.data", "check", "{nope}.yaml"],
        ["train.py", "--data", "{nope}.yaml"],
        ["export.py", "{nope}"],
        ["bench_edge.py", "--model", "{nope}"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_scripts_and_modules_exit_2_with_one_line(args, tmp_path):
    r = _run([a.format(nope=tmp_path / "nope") for a in args])
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr and "nope" in r.stderr


def test_lwdet_help_lists_the_commands():
    r = _run(["-m", "lwdet", "--help"])
    assert r.returncode == 0
    listed = [line.split()[0] for line in r.stdout.split("commands:")[1].strip().splitlines()[: len(COMMANDS)]]
    assert listed == list(COMMANDS)
    for args, message in ([[], "give a command"], [["detect"], "unknown command 'detect'"]):
        r = _run(["-m", "lwdet", *args])
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()] and message in r.stderr


def _subparsers(ap):
    yield ap
    for action in ap._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _subparsers(sub)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_default_is_shown_once(name, capsys):
    module = importlib.import_module(f"lwdet.cli.{name.replace('-', '_')}")
    if not hasattr(module, "build_parser"):
        pytest.skip(f"lwdet.cli.{name} has no build_parser yet")
    with pytest.raises(SystemExit) as e:
        lwdet_main([name, "--help"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith(f"usage: lwdet {name}")
    for ap in _subparsers(module.build_parser()):
        formatter = ap._get_formatter()
        for action in ap._actions:
            if action.help in (None, argparse.SUPPRESS) or isinstance(action, argparse._SubParsersAction):
                continue
            text = formatter._expand_help(action)
            assert text.count("default") <= 1, (action.dest, text)
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                assert "default" in text, (action.dest, text)  # every real default is shown
