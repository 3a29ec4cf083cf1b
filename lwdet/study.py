"""Comparison study: train, profile, export and bench a list of detectors on one dataset and budget, resumably.

    python -m lwdet.study configs/study-cpu.yaml [--only yolov5n,yolov5n-ghostnet_100] [--no-report]

Per detector (run folder ``<out>/<name>/``): train (an unfinished run, i.e. ``weights/last.pt`` without the
``study_trained.json`` marker, resumes), profile ``weights/best.pt``, export to ncnn (parity-checked), bench
the ncnn export at threads 1 and 2 in a torch-free subprocess (so memory is the runtime's, as on the Pi), final
val (and test, when the data has a test split) through the engine's validator. The row goes into
``<out>/results.csv`` (rewritten atomically after every detector); a row with ``status`` ``done`` is skipped on
the next invocation. At the end ``lwdet.report`` writes the report.

Several study processes may share one config (e.g. two on a 2-core CPU, where the engine trains on one thread
per process): each takes the runs no other process holds (a lock file per run, ``<out>/.<name>.lock``), merges
its rows into ``results.csv`` under a lock, and at the end waits for the runs the others still hold.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import difflib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from lwdet.artifacts import best_weights, last_weights, ncnn_folder
from lwdet.report import COLUMNS as REPORT_COLUMNS
from lwdet.report import LAYER_TIMES, PEERS_CSV
from lwdet.units import MB

LOGGER = logging.getLogger(__name__)

ROOT = Path()  # relative paths in a config resolve against the current folder (a clone: run from its root)
TRAINED = "study_trained.json"  # final marker in a run folder: training finished
TEST_COLUMNS = ("test_map50", "test_map5095", "test_precision", "test_recall", "test_f1")
COLUMNS = (*REPORT_COLUMNS, "seed", *TEST_COLUMNS, "status")
CONFIG_KEYS = {"name", "data", "out", "budget", "detectors", "baseline_seeds", "bench", "export", "report"}
BUDGET_DEFAULTS = {"epochs": 30, "imgsz": 320, "batch": 16, "seed": 0, "device": "cpu", "workers": 2,
                   "plots": False}
# parts: lwdet.parts split timing; peers: a folder of peer .param graphs timed at the study's imgsz ("" for none)
# onnx: also export ONNX and time it in onnxruntime at 1 thread (the column onnx_ms_t1)
BENCH_DEFAULTS = {"threads": [1, 2], "loops": 50, "warmup": 5, "parts": True, "peers": "../shared/peers/ncnn",
                  "onnx": True}
EXPORT_DEFAULTS = {"map_check": True, "half": False}


class StudyConfigError(ValueError):
    pass


# ------------------------------------------------------------------------------------------------------ config
def _strict(section: str, got: dict, allowed) -> None:
    for k in got:
        if k not in allowed:
            hint = difflib.get_close_matches(k, list(allowed), n=1)
            raise StudyConfigError(f"{section}: unknown key '{k}'{f'; did you mean {hint[0]!r}?' if hint else ''} "
                                   f"Known: {', '.join(sorted(allowed))}")


def load_config(path: str | Path) -> dict:
    """The study config with defaults filled in; relative paths resolve against the current folder."""
    path = Path(path)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    _strict(str(path), cfg, CONFIG_KEYS)
    if not cfg.get("detectors"):
        raise StudyConfigError(f"{path}: 'detectors' must list at least one {{backbone, neck, head}}")
    for i, d in enumerate(cfg["detectors"]):
        if not isinstance(d, dict) or "backbone" not in d:
            raise StudyConfigError(f"{path}: detectors[{i}] must be a mapping with 'backbone' (and 'neck', 'head')")
        _strict(f"{path}: detectors[{i}]", d, {"backbone", "neck", "head"})
    _strict(f"{path}: bench", cfg.get("bench") or {}, BENCH_DEFAULTS)
    _strict(f"{path}: export", cfg.get("export") or {}, EXPORT_DEFAULTS)

    def resolve(p):
        return str(p) if Path(p).is_absolute() else str((ROOT / p).resolve())

    from lwdet.data import DEFAULT_DATA

    return {
        "name": cfg.get("name", path.stem),
        "data": resolve(cfg.get("data") or DEFAULT_DATA),
        "out": resolve(cfg.get("out") or f"runs/{path.stem}"),
        "budget": {**BUDGET_DEFAULTS, **(cfg.get("budget") or {})},
        "detectors": [{"backbone": d["backbone"], "neck": d.get("neck", "sppf"), "head": d.get("head", "yolo")}
                      for d in cfg["detectors"]],
        "baseline_seeds": [int(s) for s in cfg.get("baseline_seeds") or []],
        "bench": {**BENCH_DEFAULTS, **(cfg.get("bench") or {})},
        "export": {**EXPORT_DEFAULTS, **(cfg.get("export") or {})},
        "report": resolve(cfg["report"]) if cfg.get("report") else None,
    }


def plan(cfg: dict) -> list[dict]:
    """(name, backbone, neck, yaml, seed) per run; the baseline (first detector) once more per extra seed."""
    from lwdet.models import model_yaml

    seed = int(cfg["budget"]["seed"])
    runs = []
    for i, d in enumerate(cfg["detectors"]):
        try:
            path = model_yaml(d["backbone"], d["neck"], d["head"])
        except (ValueError, FileNotFoundError) as e:
            raise StudyConfigError(f"detectors[{i}]: {e}") from None
        for s in [seed, *(cfg["baseline_seeds"] if i == 0 else [])]:
            name = path.stem if s == seed else f"{path.stem}-seed{s}"
            runs.append({"name": name, "backbone": d["backbone"], "neck": d["neck"], "head": d["head"], "yaml": path,
                         "seed": s})
    names = [r["name"] for r in runs]
    if len(set(names)) != len(names):
        raise StudyConfigError(f"detectors repeat a model: {names}")
    return runs


# ------------------------------------------------------------------------------------------------------ results CSV
def read_results(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {r["model"]: r for r in csv.DictReader(f)}


def write_results(path: Path, rows: list[dict]) -> None:
    """Atomic rewrite: a crash never leaves a torn CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS} for r in rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def claim(path: Path, wait: bool = False):
    """Exclusive hold on ``path`` (a lock file) across processes; yields False if another process holds it.

    ``flock`` locks die with their process, so a killed study leaves nothing to clean up. Without ``fcntl``
    (Windows) every claim succeeds: run one study process at a time there.
    """
    try:
        import fcntl
    except ImportError:
        yield True
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def merge_result(path: Path, row: dict, order: list[str]) -> None:
    """Put ``row`` into the results CSV, keeping rows other processes wrote meanwhile; plan order."""
    with claim(path.with_name(f".{path.name}.lock"), wait=True):
        done = read_results(path)
        done[row["model"]] = row
        write_results(path, sorted(done.values(), key=lambda r: order.index(r["model"])
                                   if r["model"] in order else len(order)))


# ------------------------------------------------------------------------------------------------------ steps
def train_run(run: dict, run_dir: Path, data: str, budget: dict) -> None:
    """Train, or resume an unfinished run; writes the TRAINED marker when done."""
    from lwdet.training import train

    marker = run_dir / TRAINED
    if marker.is_file():
        return
    overrides = {**budget, "seed": run["seed"]}
    last = last_weights(run_dir)
    if last.is_file():
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
        LOGGER.info("%s: training", run["name"])
        train(run["yaml"], data, run_dir, **overrides)
    if not best_weights(run_dir).is_file():
        raise RuntimeError(f"{run_dir}: training ended without weights/best.pt")
    marker.write_text(json.dumps({"finished": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n", encoding="utf-8")


def training_time(run_dir: Path) -> tuple[float | None, float | None]:
    """(total, mean per epoch) seconds from the run's ``time/epoch_s`` column (survives resumes)."""
    from lwdet.report import read_results as read_curves

    cols = read_curves(run_dir / "results.csv")
    epochs = [t for t in cols.get("time/epoch_s", []) if t == t]
    if not epochs:
        total = (cols.get("time") or [None])[-1]
        return total, None
    return float(sum(epochs)), float(sum(epochs) / len(epochs))


def evaluate(weights: Path, data_yaml: Path, split: str, budget: dict) -> dict:
    """P, R, mAP50, mAP50-95 and F1 (as lwdet.training.mean_f1) of ``weights`` on ``split``."""
    import numpy as np

    from lwdet.checkpoints import load_yolo

    with tempfile.TemporaryDirectory(prefix="lwdet-study-val-") as tmp:
        m = load_yolo(weights).val(data=str(data_yaml), split=split, imgsz=budget["imgsz"], batch=budget["batch"],
                                   device=budget.get("device", "cpu"), workers=0, plots=False, verbose=False,
                                   project=tmp, name="val")
    f1 = np.asarray(m.box.f1, dtype=float)
    return {"precision": float(m.box.mp), "recall": float(m.box.mr), "map50": float(m.box.map50),
            "map5095": float(m.box.map), "f1": float(f1.mean()) if f1.size else 0.0}


_BENCH_SNIPPET = """
import json, sys
from lwdet.edge.bench import bench_detector, bench_runtime
a = json.loads(sys.argv[1])
if a.get("runtime"):
    from lwdet.cli.bench import load_other
    print(json.dumps(bench_runtime(a["folder"], a["runtime"], load_other, threads=a["threads"], loops=a["loops"],
                                   warmup=a["warmup"])))
else:
    print(json.dumps(bench_detector(a["folder"], threads=a["threads"], loops=a["loops"], warmup=a["warmup"])))
"""


def bench(folder: Path, threads: int, loops: int, warmup: int, runtime: str | None = None) -> dict:
    """bench_detector in a fresh interpreter: no torch in the process, so its peak memory is ncnn's.

    ``runtime`` "onnx" times the export's sibling .onnx in onnxruntime instead (bench_edge's ``--runtimes``).
    """
    args = json.dumps({"folder": str(folder), "threads": threads, "loops": loops, "warmup": warmup,
                       "runtime": runtime})
    r = subprocess.run([sys.executable, "-c", _BENCH_SNIPPET, args], capture_output=True, text=True,
                       timeout=1800)
    if r.returncode:
        raise RuntimeError(f"bench of {folder} at {threads} threads failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


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
        return export_ncnn(weights, imgsz=imgsz, half=opts["half"], data=data, map_check=opts["map_check"],
                           overwrite=True), True
    except ParityError as e:
        LOGGER.error("%s", e)
        return None, False


def study_row(run: dict, run_dir: Path, cfg: dict) -> dict:
    """Every column of one detector (run folder trained already)."""
    from lwdet.profile import profile_detector

    budget = cfg["budget"]
    best = best_weights(run_dir)
    engine_data = run_dir / "data.yaml"
    if not Path((yaml.safe_load(engine_data.read_text(encoding="utf-8")) or {}).get("path", "")).is_dir():
        # trained on another machine (a GPU box): point the engine at this machine's copy of the dataset
        from lwdet.data import write_engine_yaml

        engine_data = write_engine_yaml(cfg["data"], run_dir / "data.here.yaml")
    row = {"model": run["name"], "backbone": run["backbone"], "neck": run["neck"], "head": run["head"],
           "seed": run["seed"], "run_dir": str(run_dir)}
    row["train_s"], row["epoch_s"] = training_time(run_dir)
    p = profile_detector(best, budget["imgsz"])
    row.update(params_m=p.params / 1e6, gflops=p.gflops, macs_m=p.macs / 1e6, mac_mb=p.memory_access_mb,
               peak_act_mb=p.peak_activation_mb, pt_mb=best.stat().st_size / MB)
    row.update(evaluate(best, engine_data, "val", budget))
    if (yaml.safe_load(engine_data.read_text(encoding="utf-8")) or {}).get("test"):
        row.update({f"test_{k}": v for k, v in evaluate(best, engine_data, "test", budget).items()})
    folder, row["parity_ok"] = export(best, cfg["data"], budget["imgsz"], cfg["export"])
    if folder is not None:
        row["ncnn_bin_mb"] = (folder / "model.ncnn.bin").stat().st_size / MB
        row = bench_row(row, cfg)
    row["status"] = "done"
    return row


def bench_row(row: dict, cfg: dict) -> dict:
    """The latency, memory and per-part columns of a finished row, measured again."""
    best = best_weights(row["run_dir"])
    folder = ncnn_folder(best)
    row = dict(row)
    for t in cfg["bench"]["threads"]:
        b = bench(folder, int(t), int(cfg["bench"]["loops"]), int(cfg["bench"]["warmup"]))
        if int(t) in (1, 2):
            row[f"latency_ms_t{int(t)}"] = b["infer_median_ms"]
        if int(t) == 1:
            row["ncnn_peak_mb"] = b["mem_peak_mb"]
    if cfg["bench"]["onnx"]:
        from lwdet.export import export_onnx

        onnx = best.with_suffix(".onnx")
        if not onnx.is_file():
            export_onnx(best, imgsz=cfg["budget"]["imgsz"], map_check=False)
        b = bench(folder, 1, int(cfg["bench"]["loops"]), int(cfg["bench"]["warmup"]), runtime="onnx")
        row["onnx_ms_t1"] = b["infer_median_ms"] if b else None
    if cfg["bench"]["parts"]:
        from lwdet.parts import part_latency

        parts = part_latency(best, cfg["budget"]["imgsz"], threads=1, loops=int(cfg["bench"]["loops"]),
                             warmup=int(cfg["bench"]["warmup"]))
        row.update({k: parts[k] for k in ("backbone_ms", "neck_ms", "head_ms")})
        (best.parent.parent / LAYER_TIMES).write_text(json.dumps(parts["layer_type_ms"], indent=1) + "\n",
                                                      encoding="utf-8")
    return row


def bench_peers(cfg: dict) -> Path | None:
    """Time the peer graphs at the study's input size, torch-free, into ``<out>/peers.csv`` (None without peers)."""
    folder = cfg["bench"]["peers"]
    if not folder:
        return None
    folder = Path(folder) if Path(folder).is_absolute() else (ROOT / folder).resolve()
    if not folder.is_dir():
        LOGGER.warning("peer graphs not found at %s; the report shows no peers", folder)
        return None
    out = Path(cfg["out"]) / PEERS_CSV
    size = int(cfg["budget"]["imgsz"])
    cmd = [sys.executable, "-m", "lwdet", "bench", "--peers", str(folder), "--input-shape", f"{size},{size},3",
           "--threads", ",".join(str(int(t)) for t in cfg["bench"]["threads"]), "--loops", str(cfg["bench"]["loops"]),
           "--warmup", str(cfg["bench"]["warmup"]), "--csv", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode:
        raise RuntimeError(f"peer bench failed: {r.stderr[-2000:]}")
    return out


def rebench(config: str | Path, report: bool = True) -> Path:
    """Time every finished detector again in one pass (e.g. on a quiet machine, after a study that shared it)."""
    cfg = load_config(config)
    results = Path(cfg["out"]) / "results.csv"
    rows = list(read_results(results).values())
    if not rows:
        raise StudyConfigError(f"{results}: no finished detectors to bench")
    for i, row in enumerate(rows):
        if row.get("status") == "done" and row.get("parity_ok") in ("True", True):
            LOGGER.info("%s: benching again", row["model"])
            rows[i] = bench_row(row, cfg)
            write_results(results, rows)
    bench_peers(cfg)
    if report:
        from lwdet.report import write_report

        write_report(results, cfg["report"] or Path(cfg["out"]) / "report")
    return results


def run_study(config: str | Path, only: list[str] | None = None, report: bool = True, train_only: bool = False) -> Path:
    """Run (or finish) the study of ``config``; returns the results CSV.

    ``train_only`` trains every run and stops there (on a GPU box); copy the run folders back and run the study
    again where the detectors will be timed: trained runs are not retrained.
    """
    cfg = load_config(config)
    out = Path(cfg["out"])
    results = out / "results.csv"
    runs = [r for r in plan(cfg) if not only or r["name"] in only]
    order = [r["name"] for r in plan(cfg)]
    pending, wait = runs, False
    while pending:  # a second pass waits for the runs another study process held during the first
        held = []
        for run in pending:
            with claim(out / f".{run['name']}.lock", wait=wait) as mine:
                if not mine:
                    LOGGER.info("%s: another study process has it; coming back to it at the end", run["name"])
                    held.append(run)
                    continue
                if read_results(results).get(run["name"], {}).get("status") == "done":
                    LOGGER.info("%s: complete, skipped", run["name"])
                    continue
                run_dir = out / run["name"]
                t0 = time.time()
                train_run(run, run_dir, cfg["data"], cfg["budget"])
                if train_only:
                    LOGGER.info("%s: trained in %.0f s", run["name"], time.time() - t0)
                    continue
                merge_result(results, study_row(run, run_dir, cfg), order)
                LOGGER.info("%s: done in %.0f s", run["name"], time.time() - t0)
        pending, wait = held, True
    if not train_only and results.is_file() and not (Path(cfg["out"]) / PEERS_CSV).is_file():
        bench_peers(cfg)
    if report and not train_only and results.is_file():
        from lwdet.report import write_report

        with claim(out / ".report.lock", wait=True):
            write_report(results, cfg["report"] or out / "report")
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lwdet.study", description=__doc__.split("\n")[0])
    p.add_argument("config", help="study config YAML (see configs/study-cpu.yaml)")
    p.add_argument("--only", help="comma-separated run names to do now (default: all)")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument("--rebench", action="store_true",
                   help="only time the finished detectors again, in one pass (after a study on a busy machine)")
    p.add_argument("--train-only", action="store_true",
                   help="only train (e.g. on a GPU box); run again without it where the detectors are timed")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if a.rebench:
            results = rebench(a.config, report=not a.no_report)
        else:
            results = run_study(a.config, a.only.split(",") if a.only else None, report=not a.no_report,
                                train_only=a.train_only)
    except StudyConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to go on (finished detectors are skipped)", file=sys.stderr)
        return 130
    except Exception as e:
        from lwdet.training import TrainingInterrupted

        if not isinstance(e, TrainingInterrupted):
            raise
        print(f"{e}\nrun the same command again to go on (finished detectors are skipped)", file=sys.stderr)
        return 130 if e.signal_name == "SIGINT" else 143
    print(f"results: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
