"""The bench: time ncnn exports, peer graphs and other runtimes on this machine (a Pi, or a workstation with Pi
projections); numpy + ncnn + stdlib, runs on a Pi.

Layers: ``timing`` (loop statistics), ``sysinfo`` (/proc memory, device facts), ``loops`` (the timed loops),
``output`` (discovery, CSV / JSON / table), ``projection`` (Pi latency projected from peers timed here). The runtime
it times is ``lwdet.edge`` (runner, pre/post-processing); the Pi app is ``lwdet.edge.app``.
"""

from lwdet.edge.bench.loops import *  # noqa: F403  (the layers' public names, listed in loops.__all__)
from lwdet.edge.bench.loops import __all__  # noqa: F401
