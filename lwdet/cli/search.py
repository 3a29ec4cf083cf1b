"""Hardware-aware search on Ray Tune: time every candidate of a space against a latency budget, train the feasible
ones under ASHA, write the study, its report and the winner (docs/search.md).

lwdet search configs/search-fast.yaml     # again after an interruption: the search resumes
"""

from __future__ import annotations

from pathlib import Path

from lwdet.cli import common


def build_parser():
    p = common.parser("lwdet search", __doc__)
    p.add_argument("config", type=Path, help="search config YAML (e.g. the shipped search-fast.yaml)")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="Ray to run the trials on, instead of the config's ray.address: local, auto or a head's HOST:PORT",
    )
    return p


def _body(a) -> int:
    from lwdet.search import run_search

    try:
        results = run_search(a.config, report=not a.no_report, address=a.ray)
    except KeyboardInterrupt:
        return common.interrupted("run the same command again to resume the search")
    print(f"results: {results}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return common.entry(build_parser, _body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
