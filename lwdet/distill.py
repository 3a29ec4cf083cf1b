"""Knowledge distillation through the engine: find the teacher checkpoint and check it before the engine loads it.

The engine (ultralytics 8.4.190) distils when its trainer gets ``distill_model=<teacher .pt>``: it wraps the student
in ``ultralytics.nn.distill_model.DistillationModel``, which hooks the inputs of the teacher's and the student's
Detect heads, pairs them level by level (a small 1x1-conv projector maps each student level to the teacher's width)
and adds ``dis`` (default 6.0) times a teacher-score-weighted L2 feature loss to the detection loss. lwdet writes
no loss of its own; it only makes sure the engine gets a teacher it can safely unpickle and pair with the student.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from lwdet.checkpoints import load_checkpoint

DIS_LOSS = "dis_loss"  # the engine's name for the distillation loss item (train/dis_loss, val/dis_loss)


def resolve_teacher(teacher: str | Path) -> Path:
    """A run folder -> its weights/best.pt; a file -> itself. Raise FileNotFoundError naming what is missing."""
    path = Path(teacher)
    if path.is_dir():
        best = path / "weights" / "best.pt"
        if not best.is_file():
            raise FileNotFoundError(f"teacher run folder {path} has no weights/best.pt (has it finished training?)")
        return best.resolve()
    if not path.is_file():
        raise FileNotFoundError(f"teacher not found: {path} (give a run folder or a .pt checkpoint)")
    return path.resolve()


def detection_strides(model: nn.Module) -> tuple[int, ...]:
    """Strides of the levels a detector's head reads, e.g. (8, 16, 32); ValueError if it has no Detect head."""
    from ultralytics.nn.modules.head import Detect

    heads = [m for m in getattr(model, "model", []) if isinstance(m, Detect)]
    if not heads:
        raise ValueError("has no Detect head, so it cannot teach a detector")
    return tuple(int(s) for s in heads[-1].stride.tolist())


def check_teacher(teacher: str | Path, student_strides, student: str, trust: bool = False) -> Path:
    """Resolve ``teacher``, load it through lwdet's allow-list and check its levels match the student's.

    Returns the checkpoint path to hand to the engine. Raises UntrustedCheckpointError (a ValueError) for a
    checkpoint outside the allow-list (unless ``trust``), ValueError when the detection strides differ: the engine
    pairs teacher and student features level by level, so they must be the same levels.
    """
    path = resolve_teacher(teacher)
    ckpt = load_checkpoint(path, trust=trust)
    model = ckpt.get("ema") or ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(model, nn.Module):
        raise ValueError(f"teacher {path}: not a detector checkpoint (no 'model' or 'ema' module in it)")
    try:
        strides = detection_strides(model)
    except ValueError as e:
        raise ValueError(f"teacher {path}: {e}") from None
    student_strides = tuple(int(s) for s in student_strides)
    if strides != student_strides:
        raise ValueError(
            f"teacher {path} detects at strides {', '.join(map(str, strides))} ({len(strides)} levels) but the "
            f"student {student} at strides {', '.join(map(str, student_strides))} ({len(student_strides)} levels); "
            "distillation pairs the levels one to one, so pick a teacher that detects at the same strides"
        )
    return path
