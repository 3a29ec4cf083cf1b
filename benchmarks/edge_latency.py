"""ncnn latency of lwdet detectors and the peers of ../shared/peers, side by side in one run.

    python benchmarks/edge_latency.py --imgsz 320 --threads 1,2 --loops 50 --out build/edge-latency
    python benchmarks/edge_latency.py --models yolov5n yolov5n-shufflenetv2_050-litepan-litehead --half

Each detector is built from its shipped YAML (random weights: latency does not depend on their values),
exported to ncnn (lwdet.experiment.timing.random_graph; fp32, and fp16 weights too with --half), then every export
and every peer graph, the peers fed the same --imgsz input, is timed in one fresh torch-free process per pass
(lwdet.experiment.timing.time_graphs, the study's and the search's side-by-side timing);
the table gives median ms and the ratio to yolov5n. The peers are then timed once more at their own input sizes.
With --md, each detector's paper costs (params, GFLOPs, memory-access cost from lwdet.profile) join its latency,
and the file says how well each cost orders the detectors by latency (Kendall's tau) and which detectors have
fewer GFLOPs yet run slower (lwdet.report.cost_vs_latency), e.g. for the study's 20 detectors (--passes:
that many runs over all graphs; each ratio is taken within a run, and its spread over the runs is shown):

    python benchmarks/edge_latency.py --study configs/study-cpu-long.yaml --passes 5 --loops 30 \
        --out build/edge-latency-study --md docs/study-long/latency-side-by-side.md

(--study takes the detectors, the input size and the class count from a study config and its data YAML.)
With --study, --study-latency writes the merged passes as a study's side-by-side file (lwdet.study.timing: one row
per run and thread count, named by run, each run timed as its YAML's graph; the peers' rows too), which the report
reads as the study's latency when it lies beside the study's results.csv; --reuse reads the pass CSVs already in
--out instead of timing again, e.g. to give a committed report the latency of the passes behind its latency-*.md:

    python benchmarks/edge_latency.py --study configs/study-frontier.yaml --imgsz 160 --out build/frontier-160 \
        --reuse --study-latency docs/study-frontier/data/latency.csv
"""

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the clone: default --peers / --out folders
DEFAULT = [
    "yolov5n",
    "ghostnet",
    "mnasnet",
    "mobilenetv3",
    "mobilenetv3_small",
    "shufflenetv2",
    "shufflenetv2_050",
    "mobilenetv2",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=DEFAULT)
    ap.add_argument("--neck", default="sppf")
    ap.add_argument(
        "--models",
        nargs="+",
        help="model YAML stems (models/yaml/, or the engine's: yolo26n, yolo11n) instead of --backbones/--neck",
    )
    ap.add_argument("--study", type=Path, help="a study config: its detectors, imgsz and class count")
    ap.add_argument("--half", action="store_true", help="also export and time each with fp16 ncnn weights")
    ap.add_argument("--imgsz", type=int, help="input size (default: the study's, else 320)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--loops", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument(
        "--passes",
        type=int,
        default=1,
        help="timing processes over all graphs, one after another; ratios are taken within each",
    )
    ap.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers" / "ncnn")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "edge-latency")
    ap.add_argument("--nc", type=int, default=5, help="classes of the exported heads (default 5)")
    ap.add_argument("--md", type=Path, help="also write latency, paper costs and where they disagree (markdown)")
    ap.add_argument("--study-latency", type=Path, help="with --study: write the passes as the study's latency.csv")
    ap.add_argument("--reuse", action="store_true", help="read the pass CSVs already in --out; time nothing")
    args = ap.parse_args()
    if args.study_latency is not None and not args.study:
        sys.exit("error: --study-latency needs --study (the runs to name the rows after)")
    if args.md is not None and args.md.exists():
        sys.exit(f"error: {args.md} exists; move it away or name another --md (nothing is overwritten)")

    import lwdet  # noqa: F401
    from lwdet.edge.bench import find_params, merge_rounds
    from lwdet.experiment.timing import random_graph, time_graphs
    from lwdet.models import model_yaml

    if args.study:
        import yaml

        from lwdet.study import load_config, plan

        cfg = load_config(args.study)
        paths = list(dict.fromkeys(Path(r["yaml"]) for r in plan(cfg)))  # a file, or an engine name (yolo26n.yaml)
        args.imgsz = args.imgsz or int(cfg["budget"]["imgsz"])
        args.nc = len(yaml.safe_load(Path(cfg["data"]).read_text(encoding="utf-8"))["names"])
    else:
        paths = (
            [Path(f"{m}.yaml") for m in args.models]
            if args.models
            else [  # shipped or engine (yolo26n)
                model_yaml(b, args.neck) for b in args.backbones
            ]
        )
    args.imgsz = args.imgsz or 320
    exports = args.out / (f"exports-{args.imgsz}" + (f"-nc{args.nc}" if args.nc != 5 else ""))
    if args.reuse:
        found = sorted(args.out.glob(f"bench-{args.imgsz}-pass*.csv"), key=lambda f: int(f.stem.rsplit("pass", 1)[1]))
        if not found:
            sys.exit(f"error: --reuse: no {args.out}/bench-{args.imgsz}-pass*.csv")
        passes = [read_pass(f) for f in found]
        print(f"reusing {len(passes)} passes: {', '.join(str(f) for f in found)}")
        if args.study_latency is not None:
            write_study_latency(args, cfg, passes)
        return
    graphs = {
        name: random_graph(path, args.nc, args.imgsz, exports, name, half=half)
        for path in paths
        for half in ((False, True) if args.half else (False,))
        for name in [f"{path.stem}-fp16" if half else path.stem]
    }
    args.out.mkdir(parents=True, exist_ok=True)
    peers = find_params(args.peers) if args.peers.is_dir() else []
    threads = [int(t) for t in args.threads.split(",")]
    passes = []
    for i in range(args.passes):  # one process per pass: each ratio is taken within one
        print(f"pass {i + 1} of {args.passes}", flush=True)
        path = args.out / f"bench-{args.imgsz}-pass{i + 1}.csv"
        time_graphs(graphs, peers, args.imgsz, threads, args.loops, args.warmup, 1, path)
        passes.append(read_pass(path))
    if args.study_latency is not None:
        write_study_latency(args, cfg, passes)
    if peers:  # and at the sizes their authors published
        native = args.out / "bench-peers-native.csv"
        time_graphs({}, peers, args.imgsz, threads, args.loops, args.warmup, 1, native, native_peers=True)
    rows = merge_rounds(passes)
    ratios = pass_ratios(passes)
    print("\n| model | input | threads | median ms | min ms | p90 ms | ratio to yolov5n | ratio range | peak MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        lo_med_hi = ratios.get((r["model"], r["threads"]))
        ratio, span = (f"{lo_med_hi[1]:.2f}", f"{lo_med_hi[0]:.2f}-{lo_med_hi[2]:.2f}") if lo_med_hi else ("-", "-")
        print(
            f"| {r['model']} | {r['input']} | {r['threads']} | {r['infer_median_ms']:.2f} | "
            f"{r['infer_min_ms']:.2f} | {r['infer_p90_ms']:.2f} | {ratio} | {span} | {r['mem_peak_mb']} |"
        )
    machine = f"{rows[0]['cpu']} ({rows[0]['arch']}, {int(rows[0]['cores'])} cores)"
    print(f"\nmachine: {machine}; CSVs: {args.out}/bench-{args.imgsz}-pass*.csv")
    if args.md is not None:
        write_md(args, paths, rows, passes, machine)
        print(f"markdown: {args.md}")


def read_pass(path: Path) -> list[dict]:
    """One pass's bench CSV, numbers parsed, exports named by folder."""
    from lwdet.report import read_bench

    rows = read_bench(path)
    for r in rows:
        if r["kind"] == "lwdet":  # an export's folder names it (fp16 exports carry the same model name inside)
            r["model"] = Path(r["path"]).name.removesuffix("_ncnn_model")
    return rows


def write_study_latency(args, cfg: dict, passes: list[list[dict]]) -> None:
    """The merged passes as a study's side-by-side file: a row per run (its YAML's graph) and per peer."""
    from lwdet.edge.bench import merge_rounds, write_csv
    from lwdet.edge.bench.sysinfo import DEVICE_FIELDS
    from lwdet.study import plan

    merged = merge_rounds(passes)
    by_graph: dict[str, list[dict]] = {}
    for r in merged:
        by_graph.setdefault(r["model"], []).append(r)
    rows = [{**r, "model": run["name"]} for run in plan(cfg) for r in by_graph.get(Path(str(run["yaml"])).stem, [])]
    rows += [r for r in merged if r["kind"] == "peer"]
    if args.study_latency.exists():
        sys.exit(f"error: {args.study_latency} exists; move it away first (nothing is overwritten)")
    args.study_latency.parent.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.study_latency, {k: merged[0].get(k) for k in DEVICE_FIELDS})  # the machine that timed them
    print(f"study latency: {args.study_latency} ({len(rows)} rows from {len(passes)} passes)")


def pass_ratios(passes: list[list[dict]], base: str = "yolov5n") -> dict[tuple[str, int], tuple[float, ...]]:
    """(model, threads) -> (lowest, median, highest) over the passes of its median / the baseline's median, each
    ratio taken within one pass (the two timed minutes apart at most, not a whole run apart)."""
    per: dict[tuple[str, int], list[float]] = {}
    for rows in passes:
        ref = {r["threads"]: r["infer_median_ms"] for r in rows if r["model"] == base}
        for r in rows:
            if r["threads"] in ref:
                per.setdefault((r["model"], r["threads"]), []).append(r["infer_median_ms"] / ref[r["threads"]])
    return {k: (min(v), statistics.median(v), max(v)) for k, v in per.items()}


def write_md(args, paths, rows, passes, machine: str) -> None:
    """Latency per thread count beside the paper costs, the costs' rank agreement with latency, and the pairs
    where fewer GFLOPs run slower (with how many passes each held in)."""
    from lwdet.profile import profile_detector
    from lwdet.report import PROXIES, cost_vs_latency, markdown_table
    from lwdet.report.rows import fmt as _fmt

    threads = sorted({r["threads"] for r in rows if r["kind"] == "lwdet"})
    ratios = pass_ratios(passes)
    # the merged rows' min is the fastest loop over every pass: noise only ever adds time
    fastest = {(r["model"], r["threads"]): r["infer_min_ms"] for r in rows}

    def vs_base(name: str, n: int) -> dict:
        ms, base = fastest.get((name, n)), fastest.get(("yolov5n", n))
        return {f"fastest_ms_t{n}": ms, f"vs_yolov5n_t{n}": ms / base if ms and base else None}

    table = []
    for path in paths:
        p = profile_detector(path, args.imgsz, nc=args.nc)
        row = {"model": path.stem, "params_m": p.params / 1e6, "gflops": p.gflops, "mac_mb": p.memory_access_mb}
        for n in threads:
            lo, med, hi = ratios.get((path.stem, n), (None, None, None))
            row.update(
                vs_base(path.stem, n),
                **{f"median_vs_yolov5n_t{n}": f"{med:.2f} ({lo:.2f}-{hi:.2f})" if med is not None else None},
            )
        table.append(row)
    table.sort(key=lambda r: r.get("fastest_ms_t1") or float("inf"))
    pairs, taus = cost_vs_latency(table, x="fastest_ms_t1")
    for pair in pairs:  # in how many passes was A's fastest loop at least 5% slower than B's?
        held = 0
        for rows_i in passes:
            ms = {r["model"]: r["infer_min_ms"] for r in rows_i if r["threads"] == 1}
            held += ms[pair["fewer_flops"]] >= 1.05 * ms[pair["but_slower_than"]]
        pair["held_in_passes"] = f"{held}/{len(passes)}"
    md = [
        f"# ncnn latency and paper costs at {args.imgsz} px, side by side\n",
        f"Machine: {machine}. Each detector built from its YAML (random weights, {args.nc} classes), exported "
        f"to ncnn fp32 and timed side by side (lwdet.experiment.timing): {len(passes)} passes, each one "
        f"process timing every graph in turn ({args.loops} loops after {args.warmup} warm-up).\n",
        "- `fastest_ms_tN`: the fastest loop at N threads over all passes. Noise on a shared machine only ever "
        "adds time, so this is the steadiest estimate of what the graph costs; `vs_yolov5n_tN` is its ratio.\n"
        "- `median_vs_yolov5n_tN`: the median over the passes of (median ms / yolov5n's median ms in the same "
        "pass), with its lowest-highest over the passes: how far this machine's noise moves a typical loop.\n"
        "- GFLOPs = 2 x multiply-adds; memory-access cost (MAC) = input + output feature maps + weights per "
        "layer, MB at fp32.\n",
        "Command: `python benchmarks/edge_latency.py " + " ".join(sys.argv[1:]) + "`\n",
        markdown_table(table, list(table[0])),
        "",
    ]
    peers = sorted({r["model"] for r in rows if r["kind"] == "peer"})
    if peers:
        prow = []
        for name in peers:
            row = {"peer": name, "input": next(r["input"] for r in rows if r["model"] == name)}
            for n in threads:
                row.update(vs_base(name, n))
            prow.append(row)
        prow.sort(key=lambda r: r.get("fastest_ms_t1") or float("inf"))
        md += [
            "## Peers, the same input (../shared/peers graphs, empty weights, as benchncnn loads them)\n",
            markdown_table(prow, list(prow[0])),
            "",
        ]
    md += [
        "## Where FLOPs and latency disagree\n",
        "Kendall's tau of each paper cost against `fastest_ms_t1` (1 = it orders the detectors exactly as the "
        "clock does): " + ", ".join(f"{label} {_fmt(taus[k])}" for k, label in PROXIES) + ".\n",
    ]
    md += (
        [
            "Pairs where a detector has fewer GFLOPs yet is slower (both by 5% or more, on `fastest_ms_t1`; "
            "largest latency ratio first; ratios are A / B; `held_in_passes`: passes in which A's fastest loop was "
            "5% slower than B's):\n",
            markdown_table(pairs, list(pairs[0])),
            "",
        ]
        if pairs
        else ["_no detector with 5% fewer GFLOPs is 5% slower than another_", ""]
    )
    args.md.parent.mkdir(parents=True, exist_ok=True)
    args.md.write_text("\n".join(md), encoding="utf-8")


if __name__ == "__main__":
    main()
