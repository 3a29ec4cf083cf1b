"""The steps of one study run: train (or resume; with a teacher: distil), evaluate, profile, export, time.

Timing runs in a fresh interpreter (``lwdet.experiment.timing.in_fresh_process``) that calls ``lwdet.edge.bench``
directly: no torch in that process, so its peak memory is the ncnn runtime's, as on the Pi.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from lwdet.artifacts import (
    DATA_YAML,
    LAYER_TIMES,
    NCNN_BIN,
    ONNX_SUFFIX,
    RESULTS_CSV,
    best_weights,
    last_weights,
    ncnn_folder,
)
from lwdet.experiment.scoring import evaluate
from lwdet.experiment.table import DONE, PEERS_CSV, train_text
from lwdet.experiment.timing import exit_with_parent, in_fresh_process, random_graph, stored_path
from lwdet.report.rows import machine_of
from lwdet.units import MB

LOGGER = logging.getLogger(__name__)

TRAINED = "study_trained.json"  # final marker in a run folder: training finished
REBUILT = "rebuilt"  # in a run folder without weights: the export of its YAML with random weights, for timing


# ------------------------------------------------------------------------------------------------------ training
def teacher_weights(run: dict, out: Path) -> Path | None:
    """The finished teacher's ``weights/best.pt`` for a run that has a teacher (None without one)."""
    if not run.get("teacher"):
        return None
    folder = out / run["teacher"]
    from lwdet.study.kept import ADOPTED

    if (folder / ADOPTED).is_file() and not best_weights(folder).is_file():
        raise RuntimeError(
            f"{run['name']}: its teacher {run['teacher']} was trained in an earlier checkout and its weights are not "
            f"here ({folder} holds only its kept row): put its best.pt at {best_weights(folder)}, or remove the "
            "teacher's row from the report's data/results.csv so that it trains again"
        )
    if not (folder / TRAINED).is_file() or not best_weights(folder).is_file():
        raise RuntimeError(f"{run['name']}: its teacher {run['teacher']} has not finished training ({folder})")
    return best_weights(folder)


def train_run(run: dict, run_dir: Path, data: str, budget: dict, teacher: Path | None = None) -> None:
    """Train, or resume an unfinished run; writes the TRAINED marker when done.

    ``teacher``: distil from these weights (``lwdet.training.train(teacher=, distill_weight=)``); only a run with a
    teacher passes those arguments, so runs without one train as before.
    """
    from lwdet.training import train

    marker = run_dir / TRAINED
    if marker.is_file():
        return
    overrides = {**budget, **(run.get("train") or {}), "seed": run["seed"]}
    last = last_weights(run_dir)
    if last.is_file():  # the engine resumes with the arguments saved in last.pt (the teacher included)
        LOGGER.info("%s: resuming %s", run["name"], last)
        try:
            train(run["yaml"], data, run_dir, resume=True, epochs=overrides["epochs"])
        except ValueError as e:
            if "nothing to resume" not in str(e):
                raise
    else:
        if run_dir.exists():  # crashed before its first checkpoint: keep it aside, never delete a run
            aside = run_dir.with_name(f"{run_dir.name}.incomplete-{int(time.time())}")
            LOGGER.warning("%s has no checkpoint; moving it to %s and starting over", run_dir, aside)
            run_dir.rename(aside)
        if teacher is not None:
            overrides["teacher"] = teacher
            if run.get("distill_weight") is not None:
                overrides["distill_weight"] = run["distill_weight"]
            LOGGER.info("%s: training, distilled from %s", run["name"], teacher)
        else:
            LOGGER.info("%s: training", run["name"])
        train(run["yaml"], data, run_dir, **overrides)
    if not best_weights(run_dir).is_file():
        raise RuntimeError(f"{run_dir}: training ended without weights/best.pt")
    marker.write_text(json.dumps({"finished": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n", encoding="utf-8")


def training_time(run_dir: Path) -> tuple[float | None, float | None]:
    """(total, mean per epoch) seconds from the run's ``time/epoch_s`` column (survives resumes)."""
    from lwdet.report.rows import read_results as read_curves

    cols = read_curves(run_dir / RESULTS_CSV)
    epochs = [t for t in cols.get("time/epoch_s", []) if t == t]
    if not epochs:
        total = (cols.get("time") or [None])[-1]
        return total, None
    return float(sum(epochs)), float(sum(epochs) / len(epochs))


# ------------------------------------------------------------------------------------------------------ timing
def load_onnx(path: Path, threads: int, x):
    """``lwdet.edge.bench`` loader for the export's sibling .onnx: one onnxruntime inference on the input ``x``."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x[None]}
    return lambda: session.run(None, feed)


def _time_export(folder: str, threads: int, loops: int, warmup: int, runtime: str) -> tuple[dict | None, str | None]:
    """In the timing process: one bench row of an ncnn export (or its .onnx), and the machine it ran on."""
    from lwdet.edge import bench

    exit_with_parent()
    rows = bench.bench_all(
        [folder],
        threads=[threads],
        runtimes=[runtime],
        loops=loops,
        warmup=warmup,
        load_other=load_onnx if runtime == "onnx" else None,
    )
    return (rows[0] if rows else None), machine_of(bench.device_info())


def _time_peers(folder: str, size: int, threads: list[int], loops: int, warmup: int, csv_path: str) -> None:
    """In the timing process: every peer .param in ``folder`` at ``size`` px into a bench CSV (device columns on)."""
    from lwdet.edge import bench

    exit_with_parent()
    rows = bench.bench_all(
        params=bench.find_params(folder), threads=threads, input_shape=(size, size, 3), loops=loops, warmup=warmup
    )
    for r in rows:
        r["path"] = stored_path(r["path"], Path(csv_path).parent)
    bench.write_csv(rows, csv_path, bench.device_info())


def bench(folder: Path, threads: int, loops: int, warmup: int, runtime: str = "ncnn") -> tuple[dict | None, str | None]:
    """(bench row, machine) of an ncnn export timed in a fresh process; ``runtime`` "onnx": its sibling .onnx
    in onnxruntime (None when there is none)."""
    return in_fresh_process(_time_export, str(folder), int(threads), int(loops), int(warmup), runtime)


# ------------------------------------------------------------------------------------------------------ export
def export(weights: Path, data: str, imgsz: int, opts: dict) -> tuple[Path | None, bool]:
    """(ncnn folder or None, parity passed); an export that exists and passed is reused."""
    from lwdet.export import ParityError, export_ncnn, read_parity

    folder = ncnn_folder(weights)
    if folder.is_dir():
        try:
            if read_parity(folder).passed:
                return folder, True
        except (OSError, ValueError, TypeError, KeyError):
            pass
    try:
        return export_ncnn(
            weights, imgsz=imgsz, half=opts["half"], data=data, map_check=opts["map_check"], overwrite=True
        ), True
    except ParityError as e:
        LOGGER.error("%s", e)
        return None, False


# ------------------------------------------------------------------------------------------------------ rows
def engine_data_yaml(run_dir: Path, cfg: dict) -> tuple[Path, dict]:
    """(path, content) of the run's data YAML for the engine on this machine."""
    engine_data = run_dir / DATA_YAML
    data = yaml.safe_load(engine_data.read_text(encoding="utf-8")) or {}
    if not Path(data.get("path", "")).is_dir():
        # trained on another machine (a GPU box): point the engine at this machine's copy of the dataset
        from lwdet.data import write_engine_yaml

        engine_data = write_engine_yaml(cfg["data"], run_dir / "data.here.yaml")
        data = yaml.safe_load(engine_data.read_text(encoding="utf-8")) or {}
    return engine_data, data


def sliced_row(row: dict, cfg: dict) -> dict:
    """``row`` with the full-size accuracy columns of the study's ``sliced`` section (lwdet.study.sliced)."""
    from lwdet.study.sliced import sliced_columns

    run_dir = Path(row["run_dir"])
    _, data = engine_data_yaml(run_dir, cfg)
    cols = sliced_columns(run_dir, data["path"], int(cfg["budget"]["imgsz"]), cfg["sliced"], cfg.get("config", ""))
    return {**row, **cols}


def identity(run: dict, run_dir: Path, cfg: dict) -> dict:
    """The columns that name a row (which detector, how it trained, where): a finished row's and a failed one's."""
    return {
        "model": run["name"],
        "backbone": run["backbone"],
        "neck": run["neck"],
        "head": run["head"],
        "seed": run["seed"],
        "teacher": run.get("teacher"),
        "distill_weight": run.get("distill_weight"),
        "train": train_text(run.get("train")),
        **(run.get("tune") or {}),  # a tuned row's chosen arguments and tuning cost (lwdet.study.tune)
        "imgsz": int((run.get("train") or {}).get("imgsz", cfg["budget"]["imgsz"])),
        "run_dir": str(run_dir),
    }


def study_row(run: dict, run_dir: Path, cfg: dict, timed: bool = True) -> dict:
    """Every column of one detector (run folder trained already); ``timed=False`` leaves the latency columns to a
    timing pass after every row has trained (a study on Ray: nothing is timed beside training)."""
    from lwdet.profile import profile_detector

    budget = cfg["budget"]
    best = best_weights(run_dir)
    engine_data, data = engine_data_yaml(run_dir, cfg)
    row = identity(run, run_dir, cfg)
    row["train_s"], row["epoch_s"] = training_time(run_dir)
    p = profile_detector(best, budget["imgsz"])
    row.update(
        params_m=p.params / 1e6,
        gflops=p.gflops,
        macs_m=p.macs / 1e6,
        mac_mb=p.memory_access_mb,
        peak_act_mb=p.peak_activation_mb,
        pt_mb=best.stat().st_size / MB,
    )
    row.update(evaluate(best, engine_data, "val", budget))
    if data.get("test"):
        row.update({f"test_{k}": v for k, v in evaluate(best, engine_data, "test", budget).items()})
    if cfg.get("sliced"):
        row = sliced_row(row, cfg)
    folder, row["parity_ok"] = export(best, cfg["data"], budget["imgsz"], cfg["export"])
    if folder is not None:
        row["ncnn_bin_mb"] = (folder / NCNN_BIN).stat().st_size / MB
        if timed:
            row = bench_row(row, cfg)
    row["status"] = DONE
    return row


def utc(t: float) -> str:
    """A time stamp of the results CSV (UTC, ISO 8601, milliseconds)."""
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")


def do_run(run: dict, cfg: dict, train_only: bool = False, timed: bool = True) -> dict | None:
    """Train (or resume) one run and return its results row with its time span and node (None with ``train_only``)."""
    out = Path(cfg["out"])
    run_dir = out / run["name"]
    t0 = time.time()
    if not (run_dir / TRAINED).is_file():
        train_run(run, run_dir, cfg["data"], cfg["budget"], teacher=teacher_weights(run, out))
    if train_only:
        LOGGER.info("%s: trained in %.0f s", run["name"], time.time() - t0)
        return None
    row = study_row(run, run_dir, cfg, timed=timed)
    row.update(started=utc(t0), finished=utc(time.time()), node=platform.node(), error="")
    LOGGER.info("%s: done in %.0f s", run["name"], time.time() - t0)
    return row


def rebuilt(run: dict, cfg: dict) -> tuple[Path, object]:
    """(ncnn folder, model) of the run's detector built from its YAML with random weights, for a row whose weights
    are not here (``lwdet.study.kept``): ncnn's latency does not depend on the weights' values."""
    from lwdet.models import build_model

    names = (yaml.safe_load(Path(cfg["data"]).read_text(encoding="utf-8")) or {})["names"]
    model = build_model(run["yaml"], nc=len(names), verbose=False)
    folder = Path(cfg["out"]) / run["name"] / REBUILT
    return random_graph(model, len(names), int(cfg["budget"]["imgsz"]), folder, "random"), model


def bench_row(row: dict, cfg: dict, run: dict | None = None) -> dict:
    """The latency, memory and per-part columns of a finished row, measured again.

    A row without weights here (adopted from a report's data) is timed from ``run``'s YAML (``rebuilt``)."""
    best = best_weights(row["run_dir"])
    source = best
    if best.is_file():
        folder = ncnn_folder(best)
        row = {**row, "latency_graph": "trained"}
    elif run is not None:
        folder, source = rebuilt(run, cfg)
        row = {**row, "latency_graph": "rebuilt"}
    else:
        raise FileNotFoundError(f"{row['model']}: no weights at {best} and no run to rebuild it from")
    loops, warmup = int(cfg["bench"]["loops"]), int(cfg["bench"]["warmup"])
    row = {**row, "imgsz": int(cfg["budget"]["imgsz"])}
    for t in cfg["bench"]["threads"]:
        b, row["machine"] = bench(folder, int(t), loops, warmup)
        if int(t) in (1, 2):
            row[f"latency_ms_t{int(t)}"] = b["infer_median_ms"]
        if int(t) == 1:
            row["ncnn_peak_mb"] = b["mem_peak_mb"]
    if cfg["bench"]["onnx"] and not best.is_file():
        LOGGER.warning("%s: no weights here; onnxruntime not timed", row["model"])
        row["onnx_ms_t1"] = None
    elif cfg["bench"]["onnx"]:
        from lwdet.export import export_onnx

        if not best.with_suffix(ONNX_SUFFIX).is_file():
            export_onnx(best, imgsz=cfg["budget"]["imgsz"], map_check=False)
        b, _ = bench(folder, 1, loops, warmup, runtime="onnx")
        row["onnx_ms_t1"] = b["infer_median_ms"] if b else None
    if cfg["bench"]["parts"]:
        from lwdet.parts import part_latency

        parts = part_latency(source, cfg["budget"]["imgsz"], threads=1, loops=loops, warmup=warmup)
        row.update({k: parts[k] for k in ("backbone_ms", "neck_ms", "head_ms")})
        (Path(row["run_dir"]) / LAYER_TIMES).write_text(
            json.dumps(parts["layer_type_ms"], indent=1) + "\n", encoding="utf-8"
        )
    return row


def bench_peers(cfg: dict) -> Path | None:
    """Time the peer graphs at the study's input size, torch-free, into ``<out>/peers.csv`` (None without peers)."""
    folder = cfg["bench"]["peers"]
    if not folder:
        return None
    if not Path(folder).is_dir():
        LOGGER.warning("peer graphs not found at %s; the report shows no peers", folder)
        return None
    out = Path(cfg["out"]) / PEERS_CSV
    in_fresh_process(
        _time_peers,
        str(folder),
        int(cfg["budget"]["imgsz"]),
        [int(t) for t in cfg["bench"]["threads"]],
        int(cfg["bench"]["loops"]),
        int(cfg["bench"]["warmup"]),
        str(out),
    )
    return out
