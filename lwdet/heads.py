"""Detection heads that lwdet adds to the engine's set."""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import Conv, Detect, DWConv
from ultralytics.nn.modules.block import DFL


class LiteDetect(Detect):
    """The engine's Detect (same outputs, loss and decoding) with depthwise-separable branches.

    Per level, the box and the class branch are each one depthwise 3x3 + one 1x1 conv at the input width, then the
    1x1 prediction conv (as NanoDet / PP-PicoDet heads), in place of the engine's two full 3x3 convs per branch:
    at 64 channels that is ~9x fewer multiply-adds in the head, most of them at the 40x40 P3 map of a 320 input.
    """

    def __init__(self, nc: int = 80, reg_max: int = 16, ch: tuple[int, ...] | list[int] = ()):
        nn.Module.__init__(self)  # Detect.__init__ would build the heavy branches only to throw them away
        self.nc, self.nl, self.reg_max = nc, len(ch), reg_max
        self.no = nc + reg_max * 4
        self.stride = torch.zeros(self.nl)  # set by the model builder from a dry run
        self.cv2 = nn.ModuleList(
            nn.Sequential(DWConv(c, c, 3), Conv(c, c, 1), nn.Conv2d(c, 4 * reg_max, 1)) for c in ch
        )
        self.cv3 = nn.ModuleList(nn.Sequential(DWConv(c, c, 3), Conv(c, c, 1), nn.Conv2d(c, nc, 1)) for c in ch)
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
