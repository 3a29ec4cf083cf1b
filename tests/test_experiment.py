"""lwdet.experiment: the config reader, the results table (old absolute run folders still read), the timing paths."""

import csv
from pathlib import Path

import pytest

from lwdet.errors import ConfigError
from lwdet.experiment import config, table
from lwdet.experiment.timing import stored_path


def _csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_table_stores_run_folders_relative_and_reads_them_back_absolute(tmp_path):
    out = tmp_path / "out"
    table.write_results(out / table.RESULTS, [{"model": "a", "run_dir": str(out / "a"), "status": table.DONE}])
    assert _csv(out / table.RESULTS)[0]["run_dir"] == "a" and list(_csv(out / table.RESULTS)[0]) == list(table.COLUMNS)
    assert table.read_results(out / table.RESULTS)["a"]["run_dir"] == str(out / "a")


def test_a_table_written_before_with_absolute_run_folders_still_reads_and_resumes(tmp_path):
    """A study begun before run_dir was stored relative: its rows read as they were, and the next merge (a row
    finishing) writes every row relative."""
    out = tmp_path / "out"
    out.mkdir()
    old = {k: "" for k in table.COLUMNS} | {"model": "a", "run_dir": str(out / "a"), "status": "done"}
    with (out / table.RESULTS).open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=table.COLUMNS)
        w.writeheader()
        w.writerow(old)
    assert table.read_results(out / table.RESULTS)["a"]["run_dir"] == str(out / "a")
    table.merge_result(out / table.RESULTS, {"model": "b", "run_dir": str(out / "b"), "status": "failed"}, ["a", "b"])
    rows = _csv(out / table.RESULTS)
    assert [(r["model"], r["run_dir"], r["status"]) for r in rows] == [("a", "a", "done"), ("b", "b", "failed")]
    elsewhere = "/somewhere/else/a"  # a folder outside the table's: kept as it is
    assert table.relative_to(elsewhere, out) == elsewhere and table.resolve(elsewhere, out) == elsewhere


def test_write_csv_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    table.write_csv(path, [{"x": 1}], ["x"])

    class Boom(Exception):
        pass

    def broken(*a, **k):
        raise Boom

    monkeypatch.setattr(table.csv, "DictWriter", broken)
    with pytest.raises(Boom):
        table.write_csv(path, [{"x": 2}], ["x"])
    assert _csv(path) == [{"x": "1"}] and [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no temporary left
    with pytest.raises(FileNotFoundError, match="nope.csv: results table not found"):
        table.read_table(tmp_path / "nope.csv", "results table")


def test_config_header_and_strict_keys(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "peers").mkdir()
    path = tmp_path / "cfg" / "x.yaml"
    path.write_text("name: x\nbudget: {epochs: 3}\nbench: {peers: peers}\n")
    raw = config.read_mapping(path, "study", {"name", "budget", "bench"})
    head = config.header(path, raw, {"peers": "", "loops": 5})
    assert head["out"] == str(tmp_path / "runs" / "x") and head["report"] is None
    assert head["budget"] == {**config.BUDGET_DEFAULTS, "epochs": 3}
    assert head["bench"] == {"peers": str(tmp_path / "cfg" / "peers"), "loops": 5}  # beside the config
    path.write_text("nmae: x\n")
    with pytest.raises(ConfigError, match="unknown key 'nmae'; did you mean 'name'"):
        config.read_mapping(path, "study", {"name"})


def test_stored_graph_paths_are_relative_or_a_name(tmp_path):
    assert stored_path(str(tmp_path / "a" / "m_ncnn_model"), tmp_path) == "a/m_ncnn_model"
    assert stored_path("/elsewhere/peers/nanodet_m.param", tmp_path) == "nanodet_m.param"
