"""Run a comparison study (train, profile, export, time every detector of a config), resumably; then its report.

lwdet study configs/study-cpu.yaml                     # again after an interruption: finished runs are skipped
lwdet study CONFIG --train-only                        # on a GPU box; then the plain command where it is timed
lwdet study CONFIG --rebench                           # time the finished detectors again, in one pass
lwdet study CONFIG --ray [auto|HOST:PORT]              # every run a Ray task: here, or on a cluster (lwdet[ray])
"""

from __future__ import annotations

import sys
from pathlib import Path

from lwdet.cli import common

RESUME = "run the same command again to go on (finished detectors are skipped)"


def build_parser():
    p = common.parser("lwdet study", __doc__)
    p.add_argument("config", type=Path, help="study config YAML (e.g. the shipped study-cpu.yaml)")
    p.add_argument(
        "--only",
        type=lambda s: [n for n in s.split(",") if n],
        help="comma-separated run names to do now, with their teachers (default: all)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run the rows as Ray tasks (pip install 'lwdet[ray]'): on a Ray started here (no ADDRESS, or the "
        "config's ray.address), 'auto' (the cluster this machine joined) or a head's HOST:PORT; a `ray:` section in "
        "the config does the same without the flag",
    )
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument(
        "--rebench",
        action="store_true",
        help="only time the finished detectors again, in one pass (after a study on a busy machine)",
    )
    p.add_argument(
        "--train-only",
        action="store_true",
        help="only train (e.g. on a GPU box); run again without it where the detectors are timed",
    )
    return p


def _has_ray_section(config: Path) -> bool:
    from lwdet.study import load_config

    return load_config(config)["ray"] is not None


def _body(a) -> int:
    from lwdet.study import rebench, run_study

    try:
        if a.rebench:
            results = rebench(a.config, report=not a.no_report)
        elif a.ray is not None or _has_ray_section(a.config):
            from lwdet.study.distributed import run_study_ray

            results = run_study_ray(a.config, a.ray or None, a.only, report=not a.no_report, train_only=a.train_only)
        else:
            results = run_study(a.config, a.only, report=not a.no_report, train_only=a.train_only)
    except KeyboardInterrupt:
        return common.interrupted(RESUME)
    except Exception as e:
        training = sys.modules.get("lwdet.training")  # only a run that trained can have been interrupted
        if training is None or not isinstance(e, training.TrainingInterrupted):
            raise
        print(f"{e}\n{RESUME}", file=sys.stderr)
        return 130 if e.signal_name == "SIGINT" else 143
    print(f"results: {results}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return common.entry(build_parser, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
