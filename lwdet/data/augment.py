"""Training augmentation presets, as engine arguments: ``train(..., **augment_overrides("topdown"))``.

``topdown`` suits imagery taken from above (aerial, drone, satellite, microscopy, documents on a table): there is no
"up", so vertical flips and 90-degree rotations keep the labels true. The engine flips up-down itself (``flipud``);
the rotations go through its Albumentations hook (``augmentations``: a list of albumentations transforms, applied
after mosaic / perspective, on the square ``imgsz`` canvas, boxes included), which it runs only when the
``albumentations`` package is installed. With its own flips, rotations by k x 90 degrees cover all 8 symmetries of
the square.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AUG_PRESETS", "augment_overrides"]

AUG_PRESETS = ("engine", "topdown")


def augment_overrides(preset: str = "engine") -> dict[str, Any]:
    """Engine training arguments for ``preset``; {} for 'engine' (the engine's own augmentation)."""
    if preset not in AUG_PRESETS:
        raise ValueError(f"unknown augmentation preset {preset!r}; choose from {', '.join(AUG_PRESETS)}")
    if preset == "engine":
        return {}
    try:
        import albumentations as A
    except ImportError:
        raise ValueError("--aug topdown needs the albumentations package (pip install albumentations==2.0.8)") from None
    # A custom list replaces the engine's default one: keep its defaults (p=0.01 each) and add the rotation.
    # RandomRotate90 draws k in 0..3 uniformly, so p=1 leaves a quarter of the images unrotated.
    transforms = [A.Blur(p=0.01), A.MedianBlur(p=0.01), A.ToGray(p=0.01), A.CLAHE(p=0.01), A.RandomRotate90(p=1.0)]
    return {"flipud": 0.5, "fliplr": 0.5, "augmentations": transforms}
