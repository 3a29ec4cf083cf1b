"""Where a data YAML's dataset lives (below the package front ``lwdet.data``, so its builders can use it too)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lwdet import cfg

__all__ = ["dataset_root"]


def dataset_root(data_yaml: str | os.PathLike, data: dict[str, Any]) -> Path:
    """The dataset folder a data YAML names: its ``path`` (relative: to the YAML's folder, or for a data YAML shipped
    in the package to :func:`lwdet.cfg.datasets_root`, so generated data never lands in the package); no ``path``:
    the YAML's folder."""
    data_yaml = Path(data_yaml).expanduser().absolute()
    root = Path(os.path.expanduser(str(data.get("path") or data_yaml.parent)))
    if not root.is_absolute():
        root = (cfg.datasets_root() if cfg.is_shipped(data_yaml) else data_yaml.parent) / root
    return root.resolve()
