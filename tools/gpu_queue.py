"""Run a list of training commands on one GPU box, several at once, in the listed order, within a time limit.

For a lent GPU machine that has torch but no Ray (Ray's wheel alone is over what such a machine can be sent):
where Ray is installed, a study's rows run as Ray tasks instead (lwdet study --ray). Stdlib only.

    python tools/gpu_queue.py JOBS --slots 16 --stop-at 480 --logs LOGDIR

JOBS: one job a line, ``NAME [after=OTHER] :: COMMAND`` (``#`` comments); a job with ``after=`` starts once OTHER
ended with exit 0, jobs start in file order as slots free. ``--no-start-after S``: no job starts after S seconds;
``--stop-at S``: jobs still running get SIGTERM (lwdet train then saves a resumable last.pt and best.pt stays the
best epoch so far), SIGKILL 30 s later. Writes LOGDIR/NAME.log per job and LOGDIR/status.tsv (name, exit, seconds).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def read_jobs(path: Path) -> list[dict]:
    jobs = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if " :: " not in line:
            sys.exit(f"{path}:{n}: expected 'NAME [after=OTHER] :: COMMAND'")
        head, cmd = line.split(" :: ", 1)
        name, *rest = head.split()
        after = [r.split("=", 1)[1] for r in rest if r.startswith("after=")]
        jobs.append({"name": name, "after": after, "cmd": cmd, "line": n})
    names = {j["name"] for j in jobs}
    for j in jobs:
        for a in j["after"]:
            if a not in names:
                sys.exit(f"{path}:{j['line']}: after={a}: no such job")
    return jobs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("jobs", type=Path)
    ap.add_argument("--slots", type=int, default=8, help="jobs at once")
    ap.add_argument("--no-start-after", type=float, default=float("inf"), help="seconds")
    ap.add_argument("--stop-at", type=float, default=float("inf"), help="seconds: SIGTERM what still runs")
    ap.add_argument("--logs", type=Path, required=True)
    args = ap.parse_args(argv)
    jobs = read_jobs(args.jobs)
    args.logs.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    pending, running, done = list(jobs), {}, {}
    termed = killed = False
    while pending or running:
        now = time.monotonic() - t0
        for name, (proc, started, log) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                done[name] = (proc.returncode, round(time.monotonic() - t0 - started, 1))
                del running[name]
                print(f"[{now:6.0f} s] {name}: exit {proc.returncode} after {done[name][1]} s", flush=True)
        if now >= args.stop_at and running and not termed:
            termed = True
            for proc, _, _ in running.values():
                os.killpg(proc.pid, signal.SIGTERM)
        if now >= args.stop_at + 30 and running and not killed:
            killed = True
            for proc, _, _ in running.values():
                os.killpg(proc.pid, signal.SIGKILL)
        if now < args.no_start_after and not termed:
            for job in list(pending):
                if len(running) >= args.slots:
                    break
                if any(a not in done for a in job["after"]):
                    continue
                pending.remove(job)
                if any(done[a][0] != 0 for a in job["after"]):
                    done[job["name"]] = ("skipped", 0)
                    continue
                log = open(args.logs / f"{job['name']}.log", "w")
                proc = subprocess.Popen(
                    job["cmd"], shell=True, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
                running[job["name"]] = (proc, now, log)
                print(f"[{now:6.0f} s] {job['name']}: started", flush=True)
        else:
            for job in pending:
                done[job["name"]] = ("not started", 0)
            pending = []
        time.sleep(1)
    with open(args.logs / "status.tsv", "w") as f:
        for j in jobs:
            code, secs = done.get(j["name"], ("?", 0))
            f.write(f"{j['name']}\t{code}\t{secs}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
