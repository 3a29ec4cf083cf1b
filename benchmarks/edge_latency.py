"""ncnn latency of lwdet detectors and the peers of ../shared/peers, side by side in one run (bench_edge.py).

    python benchmarks/edge_latency.py --imgsz 320 --threads 1,2 --loops 50 --out build/edge-latency
    python benchmarks/edge_latency.py --models yolov5n yolov5n-shufflenetv2_050-litepan-litehead --half

Each detector is built from its shipped YAML (random weights: latency does not depend on their values),
exported to ncnn through lwdet.export (fp32, and fp16 weights too with --half; raw-output parity checked), then
every export and every peer graph, the peers fed the same --imgsz input, is timed by bench_edge.py in one process;
the table gives median ms and the ratio to yolov5n. The peers are then timed once more at their own input sizes.
"""

import argparse
import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT = ["yolov5n", "ghostnet", "mnasnet", "mobilenetv3", "mobilenetv3_small", "shufflenetv2", "shufflenetv2_050",
           "mobilenetv2"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=DEFAULT)
    ap.add_argument("--neck", default="sppf")
    ap.add_argument("--models", nargs="+", help="model YAML stems (models/yaml/) instead of --backbones/--neck")
    ap.add_argument("--half", action="store_true", help="also export and time each with fp16 ncnn weights")
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--loops", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers" / "ncnn")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "edge-latency")
    args = ap.parse_args()

    import lwdet  # noqa: F401
    from lwdet.export import export_ncnn
    from lwdet.models import MODEL_DIR, LwdetModel, model_yaml

    exports = args.out / f"exports-{args.imgsz}"
    paths = [MODEL_DIR / f"{m}.yaml" for m in args.models] if args.models else [
        model_yaml(b, args.neck) for b in args.backbones]
    for path in paths:
        for half in (False, True) if args.half else (False,):
            name = f"{path.stem}-fp16" if half else path.stem
            if not (exports / f"{name}_ncnn_model").exists():
                export_ncnn(LwdetModel(path, nc=5, verbose=False), exports, args.imgsz, half=half, map_check=False,
                            name=name)
    csv_path = args.out / f"bench-{args.imgsz}.csv"
    cmd = [sys.executable, str(ROOT / "bench_edge.py"), "--all", str(exports), "--threads", args.threads,
           "--loops", str(args.loops), "--warmup", str(args.warmup), "--csv", str(csv_path)]
    if args.peers.is_dir():
        cmd += ["--peers", str(args.peers), "--input-shape", f"{args.imgsz},{args.imgsz},3"]
    subprocess.run(cmd, check=True, cwd=ROOT)
    if args.peers.is_dir():  # and at the sizes their authors published
        subprocess.run([sys.executable, str(ROOT / "bench_edge.py"), "--peers", str(args.peers), "--threads",
                        args.threads, "--loops", str(args.loops), "--warmup", str(args.warmup), "--csv",
                        str(args.out / "bench-peers-native.csv")], check=True, cwd=ROOT)
    rows = list(csv.DictReader(csv_path.open()))
    for r in rows:  # an export's folder names it (fp16 exports carry the same model name inside)
        if r["kind"] == "lwdet":
            r["model"] = Path(r["path"]).name.removesuffix("_ncnn_model")
    base = {r["threads"]: float(r["infer_median_ms"]) for r in rows if r["model"] == "yolov5n"}
    print(f"\n| model | input | threads | median ms | min ms | p90 ms | ratio to yolov5n | peak MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = float(r["infer_median_ms"]) / base[r["threads"]] if r["threads"] in base else float("nan")
        print(f"| {r['model']} | {r['input']} | {r['threads']} | {float(r['infer_median_ms']):.2f} | "
              f"{float(r['infer_min_ms']):.2f} | {float(r['infer_p90_ms']):.2f} | {ratio:.2f} | {r['mem_peak_mb']} |")
    print(f"\nmachine: {rows[0]['cpu']} ({rows[0]['arch']}, {rows[0]['cores']} cores); CSV: {csv_path}")


if __name__ == "__main__":
    main()
