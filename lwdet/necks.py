"""Neck blocks that lwdet adds to the engine's set."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.nn.modules import Conv


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling (DeepLabv3) in place of SPPF at P5.

    Parallel branches: a 1x1 conv, one dilated 3x3 conv per rate, and image pooling (global average, 1x1 conv,
    broadcast back to H x W); concatenated and projected by a 1x1 conv to ``c2`` channels.
    """

    def __init__(self, c1: int, c2: int, rates=(1, 2, 3), hidden: int | None = None):
        super().__init__()
        c_ = hidden or c2 // 4  # branch width follows the output budget, not the (possibly wide) backbone
        self.conv1x1 = Conv(c1, c_, 1)
        self.atrous = nn.ModuleList(Conv(c1, c_, 3, d=r) for r in rates)
        # No BatchNorm after pooling: a (B, C, 1, 1) map has one value per channel when B == 1.
        self.pool_conv = nn.Conv2d(c1, c_, 1)
        self.pool_act = nn.SiLU()
        self.project = Conv(c_ * (len(rates) + 2), c2, 1)

    def forward(self, x):
        # x: (B, C1, H/32, W/32)
        pooled = self.pool_act(self.pool_conv(F.adaptive_avg_pool2d(x, 1)))  # (B, C_, 1, 1)
        branches = [self.conv1x1(x), *(conv(x) for conv in self.atrous), pooled.expand(-1, -1, x.shape[2], x.shape[3])]
        return self.project(torch.cat(branches, 1))  # (B, C2, H/32, W/32)
