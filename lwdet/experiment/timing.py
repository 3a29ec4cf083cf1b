"""Side-by-side timing: graphs built with random weights, timed in one fresh torch-free process, round-robin.

ncnn's latency does not depend on the weights' values, so a detector not trained (a search's candidate) or whose
weights are elsewhere (a study row trained in another checkout) is timed from its YAML built with random weights.
Every graph and peer is timed in one new interpreter (``multiprocessing`` spawn: no torch there, so its peak memory
is the ncnn runtime's, as on the Pi), round-robin over passes: a slow minute on a shared machine hits every graph
alike.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lwdet.artifacts import NCNN_PARAM, NCNN_SUFFIX

LOGGER = logging.getLogger(__name__)


def exit_with_parent() -> None:
    """In a timing process: exit when the process that started it is gone (killed), instead of lingering."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def in_fresh_process(fn, *args):
    """``fn(*args)`` in a new interpreter (spawned, so nothing of this process, torch included, is in it)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def random_graph(model, nc: int, imgsz: int, folder: Path, name: str, half: bool = False) -> Path:
    """``<folder>/<name>_ncnn_model``: ``model`` (a built detector, or a model YAML built here with random weights
    and ``nc`` classes) exported to ncnn at ``imgsz``, unless that export is there already."""
    out = Path(folder) / f"{name}{NCNN_SUFFIX}"
    if not (out / NCNN_PARAM).is_file():
        from lwdet.export import export_ncnn
        from lwdet.models import build_model

        if isinstance(model, (str, Path)):
            model = build_model(model, nc=nc, verbose=False)
        export_ncnn(model, folder, imgsz, half=half, map_check=False, name=name)
    return out


def stored_path(path: str, base: Path) -> str:
    """A graph's path as a side-by-side CSV stores it: relative to the CSV's folder when inside it, else its name
    (a peer's file: where it lay is the machine's business, not the data's)."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return p.name


def _time_all(graphs: dict[str, str], peers: list[str], size: int | None, threads: list[int], loops: int,
              warmup: int, passes: int, csv_path: str) -> None:  # fmt: skip
    """In the timing process (no torch): every graph and peer (at ``size``, or None: their own sizes), round-robin
    passes, into a bench CSV whose graph rows are named by ``graphs``' keys."""
    from lwdet.edge import bench

    exit_with_parent()
    by_path = {str(Path(p).resolve()): name for name, p in graphs.items()}
    rows = bench.bench_all(
        list(graphs.values()),
        params=peers,
        threads=threads,
        input_shape=(size, size, 3) if size else None,
        loops=loops,
        warmup=warmup,
        rounds=passes,
    )
    base = Path(csv_path).parent
    for r in rows:
        if r.get("kind") == "lwdet":  # a rebuilt export's metadata names it "random": the caller names it here
            r["model"] = by_path.get(str(Path(r["path"]).resolve()), r["model"])
        if r.get("path"):
            r["path"] = stored_path(r["path"], base)
    bench.write_csv(rows, csv_path, bench.device_info())


def time_graphs(graphs: dict[str, Path], peers: list[Path], imgsz: int, threads: list[int], loops: int, warmup: int,
                passes: int, out: Path, native_peers: bool = False) -> Path:  # fmt: skip
    """Time ncnn exports (name -> folder) and peer .params at ``imgsz`` (``native_peers``: the peers at their
    published input sizes, for a Pi projection) in one fresh torch-free process, round-robin over ``passes``; the
    merged rows, named by ``graphs``' keys, go into the bench CSV ``out`` (written atomically)."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    LOGGER.info(
        "timing %d graphs and %d peers side by side at %d px: %d passes, threads %s, %d loops each",
        len(graphs), len(peers), imgsz, passes, list(threads), loops,
    )  # fmt: skip
    in_fresh_process(
        _time_all,
        {k: str(v) for k, v in graphs.items()},
        [str(p) for p in peers],
        None if native_peers else int(imgsz),
        [int(t) for t in threads],
        int(loops),
        int(warmup),
        int(passes),
        str(tmp),
    )
    tmp.replace(out)
    return out
