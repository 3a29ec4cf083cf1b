"""Training: the engine's DetectionTrainer with lwdet models, F1, epoch time and TensorBoard logging.

Every epoch the results CSV and TensorBoard get the same names for every backbone:
``metrics/precision(B)``, ``metrics/recall(B)``, ``metrics/mAP50(B)``, ``metrics/mAP50-95(B)``,
``metrics/F1(B)``, ``train/{box,cls,dfl,dis}_loss``, ``val/{box,cls,dfl,dis}_loss``, ``lr/pg{0,1,2}``,
``time/epoch_s``. ``dis_loss`` is the engine's distillation loss: 0 in runs without a teacher, and 0 in validation
always (the engine computes it only on training batches).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import RANK

from lwdet.artifacts import last_weights
from lwdet.checkpoints import vet
from lwdet.distill import DIS_LOSS, check_teacher
from lwdet.models import ModelSource, build_model, read_model

LOGGER = logging.getLogger(__name__)

F1 = "metrics/F1(B)"
EPOCH_TIME = "time/epoch_s"
ENGINE_EPOCHS = 100  # the engine's default budget, for which its epoch-count defaults below were chosen
# setting: (the engine's default, the fewest epochs lwdet lets it scale down to)
EPOCH_SETTINGS = {"close_mosaic": (10, 1), "warmup_epochs": (3.0, 1.0)}


# lwdet's optimizer: SGD at the engine's lr0 0.01 / momentum 0.937 (YOLOv5's recipe). The engine's optimizer='auto'
# picks AdamW at lr 0.002 * 5 / (4 + nc) for runs under 10k iterations (every CPU-sized run): a fine-tuning rate.
# From scratch at a short budget SGD trains far faster: docs/head-ablation/README.md (configs/study-head-ablation*.yaml).
OPTIMIZER = "SGD"

# Fine-tuning from ImageNet weights (--pretrained, --backbone-weights): an optimizer step every batch (the engine's
# nominal batch ``nbs`` = the batch, where its default 64 accumulates 4 batches of 16 per step). Chosen on a held-out
# strip of the NEON training orthophoto among lr0 0.002 / 0.01 / 0.03, a frozen backbone, AdamW 1e-3 and nbs=batch
# (val-tile mAP50-95 0.183 against 0.114 for the from-scratch recipe; docs/neon-pretrained): 82 tiles make 6 batches
# an epoch, 1.5 optimizer steps at nbs 64. Keys the caller sets win.
FINE_TUNE = {"nbs": "batch"}


def fine_tune_defaults(overrides: dict) -> dict:
    """:data:`FINE_TUNE` resolved for a run's ``overrides`` (``nbs`` = its batch), without the keys they set."""
    batch = overrides.get("batch", 16)
    if not (isinstance(batch, int) and batch >= 1):  # the engine's auto batch (-1, a memory fraction): its nbs
        return {k: v for k, v in FINE_TUNE.items() if v != "batch" and k not in overrides}
    out = {k: (batch if v == "batch" else v) for k, v in FINE_TUNE.items()}
    return {k: v for k, v in out.items() if k not in overrides}


def budget_defaults(epochs: int, overrides: dict | None = None) -> dict:
    """lwdet's training settings that differ from the engine's defaults, for a budget of ``epochs``.

    ``optimizer`` = :data:`OPTIMIZER` (SGD) instead of the engine's 'auto'. Epoch-count settings scaled to the
    budget as the engine's defaults are to its 100 epochs: ``close_mosaic`` = max(1, round(0.1 * epochs)) and
    ``warmup_epochs`` = max(1, 0.03 * epochs), each capped at the engine's default (so runs of 100+ epochs are
    unchanged). With the engine's fixed close_mosaic=10, a 10-epoch run never sees a mosaic, and its warmup (3
    epochs) takes 30 % of the run. Keys set in ``overrides`` are left out.
    """
    out: dict = {"optimizer": OPTIMIZER}
    for key, (default, floor) in EPOCH_SETTINGS.items():
        value = min(default, max(floor, default * epochs / ENGINE_EPOCHS))
        out[key] = round(value) if isinstance(default, int) else round(value, 2)
    return {k: v for k, v in out.items() if k not in (overrides or {})}


def mean_f1(validator) -> float:
    """Mean over classes of per-class F1 at the engine's operating point (the confidence maximising mean F1).

    That is the point where the engine reads its precision and recall, so F1, P and R describe the same detections.
    """
    f1 = np.asarray(validator.metrics.box.f1, dtype=float)
    return float(f1.mean()) if f1.size else 0.0


def with_f1(metrics: dict, validator) -> dict:
    """Insert F1 right after mAP50-95 so the CSV reads P, R, mAP50, mAP50-95, F1."""
    out = {}
    for key, value in metrics.items():
        out[key] = value
        if key == "metrics/mAP50-95(B)":
            out[F1] = mean_f1(validator)
    out.setdefault(F1, mean_f1(validator))
    return out


class LwdetTrainer(DetectionTrainer):
    """DetectionTrainer that builds lwdet and engine model YAMLs (``build_model``) and logs F1, epoch time and
    TensorBoard scalars.

    Callbacks are registered here, not by the caller, so the engine's DDP workers (which re-create the trainer
    from its class) log the same way.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._final_eval = False
        self.student = None  # a model train() built already (one build per run): get_model hands it over once
        self.interrupted = None  # the signal's name once SIGINT/SIGTERM asked training to stop
        self._tb = None
        self.add_callback("on_fit_epoch_end", _tensorboard_epoch)
        self.add_callback("on_train_end", _tensorboard_close)

    def check_resume(self, overrides):
        epochs = overrides.pop("epochs", None) if self.args.resume else None
        super().check_resume(overrides)
        if self.resume and epochs:  # the engine keeps the checkpoint's epochs; honour a new target
            self.args.epochs = epochs

    def get_model(self, cfg=None, weights=None, verbose=True):
        model, self.student = self.student, None
        if model is None or (model.yaml["nc"], model.yaml["channels"]) != (self.data["nc"], self.data["channels"]):
            model = build_model(cfg, nc=self.data["nc"], ch=self.data["channels"], verbose=verbose and RANK == -1)
        model = self.set_model_names_for_load(model)
        if weights:
            model.load(weights)
        return model

    def label_loss_items(self, loss_items=None, prefix="train"):
        """The engine's loss items plus ``dis_loss`` (0 without a teacher), so every run logs the same columns."""
        items = super().label_loss_items(loss_items, prefix)
        key = f"{prefix}/{DIS_LOSS}"
        if loss_items is None:
            return items if key in items else [*items, key]
        items.setdefault(key, 0.0)
        return items

    def validate(self):
        metrics, fitness = super().validate()
        if metrics is not None:
            metrics = with_f1(metrics, self.validator)
            metrics[EPOCH_TIME] = time.time() - self.epoch_time_start
        return metrics, fitness

    def save_model(self):
        """The engine's checkpoints, written atomically: a crash mid-write never leaves a torn last.pt/best.pt."""
        real = (self.last, self.best)
        self.last, self.best = (p.with_name(f".{p.name}.tmp") for p in real)
        try:
            saved = super().save_model()
        finally:
            tmp, (self.last, self.best) = (self.last, self.best), real
        for t, r in zip(tmp, real):
            if t.exists():
                os.replace(t, r)
        return saved

    def read_results_csv(self) -> dict:
        """results.csv as {column: [values]}, for the checkpoint's ``train_results``.

        The engine reads it with polars, a 54 MB wheel used for nothing else on the training path; the stdlib
        gives the same dict, so a training machine without polars (a rented GPU box) still trains.
        """
        try:
            with open(self.csv, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        except OSError:
            return {}

        def num(v):
            for cast in (int, float):
                with contextlib.suppress(TypeError, ValueError):
                    return cast(v)
            return v

        return {k.strip(): [num(r[k]) for r in rows] for k in (rows[0] if rows else {})}

    def final_eval(self):
        if self.interrupted:  # keep last.pt resumable: the engine's final step strips its optimizer state
            return
        self._final_eval = True  # best.pt's metrics are reported by train(), not logged as one more epoch
        super().final_eval()
        if self.metrics:
            self.metrics = with_f1(self.metrics, self.validator)


def _tensorboard_epoch(trainer: LwdetTrainer) -> None:
    if trainer._final_eval or RANK not in (-1, 0):
        return
    if trainer._tb is None:
        from torch.utils.tensorboard import SummaryWriter

        trainer._tb = SummaryWriter(str(trainer.save_dir))
    scalars = {**trainer.label_loss_items(trainer.tloss, prefix="train"), **(trainer.metrics or {}), **trainer.lr}
    for tag, value in scalars.items():
        trainer._tb.add_scalar(tag, float(value), trainer.epoch + 1)
    trainer._tb.flush()


def _tensorboard_close(trainer: LwdetTrainer) -> None:
    if trainer._tb is not None:
        trainer._tb.close()
        trainer._tb = None


@contextlib.contextmanager
def _stop_on_signals(trainer: LwdetTrainer):
    """SIGINT/SIGTERM stop training after the current batch; the epoch is validated and last.pt saved, resumable.

    A second signal stops at once (last.pt is then the previous epoch's).
    """

    def handler(signum, frame):
        if trainer.interrupted:
            raise KeyboardInterrupt
        trainer.interrupted = signal.Signals(signum).name
        trainer.stop = True
        LOGGER.warning(
            "%s: stopping after this batch and saving a resumable last.pt (again to stop now)", trainer.interrupted
        )

    if threading.current_thread() is not threading.main_thread():  # e.g. a Ray Tune trial: its runner stops it
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def new_run_dir(project: str | Path, name: str, explicit: bool) -> Path:
    """Pick DIR/NAME for a new run; an explicit name that exists is an error, a default name gets -2, -3, ..."""
    base = Path(project).resolve() / name
    if not base.exists():
        return base
    if explicit:
        raise FileExistsError(f"{base} already exists; pick another --name, or pass --resume to continue it")
    k = 2
    while (candidate := base.with_name(f"{name}-{k}")).exists():
        k += 1
    return candidate


class DataCheckError(ValueError):
    """The dataset has errors; ``report`` holds them (lwdet.data.check.Report)."""

    def __init__(self, message: str, report):
        super().__init__(message)
        self.report = report


def _n_bad(report) -> int:
    return len({i.image for i in report.errors if i.image})


def train(
    model_yaml: str | Path,
    data_yaml: str | Path,
    run_dir: Path,
    *,
    resume: bool = False,
    backbone_weights: str | Path | None = None,
    skip_bad: bool = False,
    trust_checkpoint: bool = False,
    pretrained: bool = False,
    teacher: str | Path | None = None,
    distill_weight: float | None = None,
    **overrides,
) -> dict:
    """Train ``model_yaml`` on ``data_yaml`` into ``run_dir``; returns the final metrics of best.pt.

    The run folder keeps what it was trained from: ``data.yaml`` (absolute paths, for the engine) and a copy of the
    model YAML (plus ``backbone_weights`` when given). ``overrides`` are engine training arguments (epochs, imgsz,
    batch, device, workers, seed, ...). The dataset is checked first (``lwdet.data.check``): errors stop training
    with a DataCheckError unless ``skip_bad``, which trains on the images without errors. No user file is changed.

    ``pretrained`` takes the backbone's ImageNet weights from timm's / torchvision's cache, downloading them there
    when online (``lwdet.pretrained``); the run's model YAML copy records the file, as for ``backbone_weights``.
    ``teacher`` (a run folder or a .pt; ignored on resume, where the run keeps its own) distils into the student
    through the engine (``lwdet.distill``), with the engine's loss weight ``dis`` set to ``distill_weight`` if given.
    It is loaded through lwdet's checkpoint allow-list (``trust_checkpoint`` skips it) and must detect at the
    student's strides. Epoch-count settings the caller does not set are scaled to ``epochs`` (``budget_defaults``).
    """
    if distill_weight is not None and teacher is None:
        raise ValueError("a distillation weight needs a teacher (--teacher RUN_OR_PT)")
    if distill_weight is not None and not distill_weight > 0:
        raise ValueError(f"the distillation weight must be > 0, got {distill_weight}")
    from lwdet.data import ensure_dataset, write_engine_yaml
    from lwdet.data.check import check_dataset, write_good_yaml

    run_dir = Path(run_dir)
    if resume:
        last = last_weights(run_dir)
        if not last.is_file():
            raise FileNotFoundError(f"cannot resume: {last} does not exist")
        vet(last, trust_checkpoint)  # the engine unpickles it in full; only let allow-listed classes through
        trainer = LwdetTrainer(overrides={"resume": str(last), "save_dir": str(run_dir), **overrides})
    else:
        source = read_model(model_yaml)  # the one read of the model YAML; the run folder gets a copy of its text
        weights_src = None  # where --pretrained found the weights (lwdet.pretrained.WeightsSource)
        if pretrained:
            from lwdet.pretrained import resolve, spec_backbone

            # --backbone-weights FILE, an installed weights package, the timm / torchvision cache, a download
            weights_src = resolve(spec_backbone(source.spec), backbone_weights)
            backbone_weights = weights_src.path
        if backbone_weights:
            if not Path(backbone_weights).is_file():
                raise FileNotFoundError(f"backbone weights not found: {backbone_weights}")
            if "backbone_weights" in source.spec:
                raise ValueError(f"{model_yaml} sets backbone_weights already; drop --backbone-weights or the key")
            source = source.with_key("backbone_weights", Path(backbone_weights).resolve())
        # The one build, for the data's classes, seeded as the engine's trainer seeds its own build (so a run's
        # weights are what the engine would have initialised); a width mistake, or backbone weights that do not fit,
        # fail here, before the run folder.
        student = _build_student(source, data_yaml, overrides)
        if teacher is not None:
            path = check_teacher(teacher, student.stride.tolist(), Path(model_yaml).name, trust=trust_checkpoint)
            overrides = {**overrides, "distill_model": str(path)}
            if distill_weight is not None:
                overrides["dis"] = float(distill_weight)
        ensure_dataset(data_yaml)  # builds the embedded dataset on first use
        report = check_dataset(
            data_yaml, imgsz=overrides.get("imgsz", 640)
        )  # per-image results cached (~/.cache/lwdet)
        for issue in report.issues:
            if issue.kind in ("class_missing_in_split", "tiny_objects"):
                LOGGER.warning("data check: %s", issue.message)
        if report.errors and not skip_bad:
            raise DataCheckError(f"{data_yaml}: {len(report.errors)} errors in the dataset (see report)", report)
        run_dir.mkdir(parents=True)
        model_copy = run_dir / Path(model_yaml).name
        model_copy.write_text(source.text, encoding="utf-8")
        student.yaml["yaml_file"] = str(model_copy)  # as if built from the copy: the run folder is self-contained
        if backbone_weights:  # where the weights came from, and which file exactly
            from lwdet.pretrained import record_weights

            record_weights(run_dir, weights_src, source.spec, backbone_weights)
        engine_data = write_engine_yaml(data_yaml, run_dir / "data.yaml")
        if report.errors:
            engine_data = write_good_yaml(report, run_dir / "data-good")
            LOGGER.warning("--skip-bad: training without %d images that have errors", _n_bad(report))
        args = {"model": str(model_copy), "data": str(engine_data), "save_dir": str(run_dir)}
        overrides = {**budget_defaults(int(overrides.get("epochs", ENGINE_EPOCHS)), overrides), **overrides}
        if backbone_weights:  # fine-tuning: lwdet's measured recipe for ImageNet weights
            overrides = {**fine_tune_defaults(overrides), **overrides}
        trainer = LwdetTrainer(overrides={**args, **overrides})
        trainer.student = student
    try:
        with _stop_on_signals(trainer):
            trainer.train()
    except AssertionError as e:  # the engine asserts on a resume of a finished run
        if resume and "nothing to resume" in str(e):
            raise ValueError(f"{run_dir} finished its epochs already; nothing to resume") from None
        raise
    metrics = {k: float(v) for k, v in (trainer.metrics or {}).items()}
    if trainer.interrupted:
        raise TrainingInterrupted(trainer.interrupted, run_dir, trainer.epoch + 1)
    return metrics


def _build_student(source: ModelSource, data_yaml, overrides: dict):
    """Build the run's model once, for the data's classes and channels, under the seed the engine's trainer sets
    before its own build (``init_seeds(seed + 1 + RANK)``), so the initial weights are the ones it would build."""
    from ultralytics.cfg import DEFAULT_CFG_DICT
    from ultralytics.utils.torch_utils import init_seeds

    from lwdet.data import data_classes

    nc, ch = data_classes(data_yaml)
    seed = overrides.get("seed", DEFAULT_CFG_DICT["seed"])
    init_seeds(seed + 1 + RANK, deterministic=overrides.get("deterministic", DEFAULT_CFG_DICT["deterministic"]))
    return build_model(source, nc=nc, ch=ch, verbose=RANK == -1)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a resumable checkpoint."""

    def __init__(self, signal_name: str, run_dir: Path, epoch: int):
        super().__init__(f"{signal_name}: stopped in epoch {epoch}; {run_dir / 'weights' / 'last.pt'} is resumable")
        self.signal_name, self.run_dir, self.epoch = signal_name, run_dir, epoch
