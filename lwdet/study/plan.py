"""The runs of a study, in the order they must happen: one per detector row, the baseline once more per extra seed,
and every teacher before the runs it teaches."""

from __future__ import annotations

import difflib
from pathlib import Path

from lwdet.study.config import StudyConfigError


def _suggest(name: str, known) -> str:
    hint = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


def model_source(model: str, config_dir: Path) -> Path | str:
    """A ``model:`` entry: a YAML file (beside the config, in the working folder, or shipped with lwdet), else the
    name as given (the engine's own YAML such as ``yolo26n.yaml``, resolved when the model is built)."""
    from lwdet.models import MODEL_DIR

    p = Path(model).expanduser()
    for cand in (p,) if p.is_absolute() else (config_dir / p, Path.cwd() / p, Path(MODEL_DIR) / p.name):
        if cand.is_file():
            return cand.resolve()
    return model


def _rows(cfg: dict) -> list[dict]:
    """One run per detector row, plus the baseline's repeat seeds; ``row`` = its index in ``detectors``."""
    from lwdet.models import model_yaml

    where = cfg.get("config", "study config")
    config_dir = Path(cfg["config"]).resolve().parent if cfg.get("config") else Path.cwd()
    seed = int(cfg["budget"]["seed"])
    runs = []
    for i, d in enumerate(cfg["detectors"]):
        if "model" in d:
            source = model_source(d["model"], config_dir)
            stem = Path(str(source)).stem
            parts = {"backbone": stem, "neck": "", "head": ""}
        else:
            try:
                source = model_yaml(d["backbone"], d["neck"], d["head"], d.get("rep", False))
            except (ValueError, FileNotFoundError) as e:
                raise StudyConfigError(f"{where}: detectors[{i}]: {e}") from None
            stem, parts = source.stem, {k: d[k] for k in ("backbone", "neck", "head")}
        name = d.get("id") or (f"{stem}-distill-{d['teacher']}" if d.get("teacher") else stem)
        extra = [*(cfg["baseline_seeds"] if i == 0 else []), *d.get("seeds", [])]
        for s in [seed, *(x for x in dict.fromkeys(extra) if x != seed)]:
            runs.append(
                {
                    "name": name if s == seed else f"{name}-seed{s}",
                    **parts,
                    "yaml": source,
                    "seed": s,
                    "teacher": d.get("teacher"),
                    "distill_weight": d.get("distill_weight"),
                    "train": d.get("train") or {},
                    "resources": d.get("resources") or {},
                    "row": i,
                }
            )
    names = [r["name"] for r in runs]
    if dup := sorted({n for n in names if names.count(n) > 1}):
        raise StudyConfigError(f"{where}: detectors repeat a run name {dup}; give one of them an 'id'")
    return runs


def _teachers_first(runs: list[dict], where: str) -> list[dict]:
    """``runs`` in config order, except that each teacher's run comes before its students' (depth first)."""
    by_name = {r["name"]: r for r in runs}
    for r in runs:
        t = r["teacher"]
        if t is not None and t not in by_name:
            raise StudyConfigError(
                f"{where}: detectors[{r['row']}] ({r['name']}): teacher '{t}' is not the id of "
                f"another row{_suggest(t, by_name)} Ids: {', '.join(by_name)}"
            )
    ordered: list[dict] = []
    placed: set[str] = set()

    def visit(r: dict, chain: list[str]) -> None:
        if r["name"] in placed:
            return
        if r["name"] in chain:
            loop = " -> ".join([*chain[chain.index(r["name"]) :], r["name"]])
            raise StudyConfigError(f"{where}: detectors[{r['row']}] ({r['name']}): teachers form a cycle: {loop}")
        if r["teacher"] is not None:
            visit(by_name[r["teacher"]], [*chain, r["name"]])
        placed.add(r["name"])
        ordered.append(r)

    for r in runs:
        visit(r, [])
    return ordered


def plan(cfg: dict) -> list[dict]:
    """Runs as dicts (name, backbone, neck, head, yaml, seed, teacher, distill_weight, row), teachers first."""
    return _teachers_first(_rows(cfg), cfg.get("config", "study config"))


def select(runs: list[dict], only: list[str] | None) -> list[dict]:
    """The runs named in ``only`` (all when None) and, transitively, their teachers; plan order kept."""
    if not only:
        return list(runs)
    by_name = {r["name"]: r for r in runs}
    for name in only:
        if name not in by_name:
            raise StudyConfigError(f"--only: no run named '{name}'{_suggest(name, by_name)} Runs: {', '.join(by_name)}")
    keep, todo = set(), list(only)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            if by_name[name]["teacher"]:
                todo.append(by_name[name]["teacher"])
    return [r for r in runs if r["name"] in keep]
