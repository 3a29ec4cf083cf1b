"""The configuration files lwdet ships inside its package, and where generated datasets go. Torch- and yaml-free.

- ``MODELS``: model YAMLs (``lwdet/cfg/models/*.yaml``, written by ``tools/gen_model_yamls.py``)
- ``DATASETS``: data YAMLs (``lwdet/cfg/datasets/*.yaml``), e.g. the default embedded set ``fmnist-det.yaml``
- ``STUDIES``: study configs (``lwdet/cfg/studies/*.yaml``)

A clone also has them at ``models/yaml/``, ``configs/`` (symlinks to these folders) and ``datasets/*.yaml``
(symlinks to the files): one copy each.

Generated datasets never go into the package: a data YAML shipped here with a relative ``path:`` names a folder
under :func:`datasets_root`, which is ``$LWDET_DATASETS`` if set, else ``datasets/`` in the current folder (in a
clone, run from its root, that is the clone's gitignored ``datasets/``). A data YAML anywhere else resolves a
relative ``path:`` against its own folder, as the engine does.
"""

from __future__ import annotations

import os
from pathlib import Path

CFG_DIR = Path(__file__).resolve().parent
MODELS = CFG_DIR / "models"
DATASETS = CFG_DIR / "datasets"
STUDIES = CFG_DIR / "studies"
DATASETS_ENV = "LWDET_DATASETS"


def datasets_root() -> Path:
    """Where datasets named by a shipped data YAML are generated / looked for: ``$LWDET_DATASETS`` or ``./datasets``."""
    return Path(os.environ.get(DATASETS_ENV) or "datasets").expanduser().absolute()


def is_shipped(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file in one of the package's cfg folders (reached directly, not through a symlink)."""
    parent = Path(path).expanduser().absolute().parent
    return parent.resolve() in (MODELS, DATASETS, STUDIES)
