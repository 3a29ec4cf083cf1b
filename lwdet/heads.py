"""Detection heads that lwdet adds to the engine's set."""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import Conv, Detect, DWConv, RepConv
from ultralytics.nn.modules.block import DFL


def _init_bare(head: Detect, nc: int, reg_max: int, ch) -> None:
    """What every lwdet head shares with the engine's Detect, without building Detect's own branches."""
    nn.Module.__init__(head)  # Detect.__init__ would build the full-width branches only to throw them away
    head.nc, head.nl, head.reg_max = nc, len(ch), reg_max
    head.no = nc + reg_max * 4
    head.stride = torch.zeros(head.nl)  # set by the model builder from a dry run


def _separable(c: int, k: int, depth: int) -> list[nn.Module]:
    """``depth`` depthwise-separable stages at width ``c``: a depthwise k x k conv, then a 1x1 conv (each BN + act)."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [DWConv(c, c, k), Conv(c, c, 1)]
    return layers


class LiteDetect(Detect):
    """The engine's Detect (same outputs, loss and decoding) with depthwise-separable branches.

    Per level, ``depth`` depthwise-separable stages (a depthwise ``kernel`` x ``kernel`` conv + a 1x1 conv, at the
    input width) then the 1x1 prediction convs, in place of the engine's two full 3x3 convs per branch (NanoDet /
    PP-PicoDet style). ``shared``: one stack per level feeds both the box and the class prediction (PP-PicoDet's
    shared head); otherwise the box and the class branch each have their own stack. The defaults (depth 1, 3x3, not
    shared) are the original LiteDetect: at 64 channels ~9x fewer multiply-adds than the engine's head.
    """

    def __init__(
        self,
        nc: int = 80,
        reg_max: int = 16,
        ch: tuple[int, ...] | list[int] = (),
        depth: int = 1,
        kernel: int = 3,
        shared: bool = False,
    ):
        _init_bare(self, nc, reg_max, ch)
        self.shared = shared
        if shared:
            self.stem = nn.ModuleList(nn.Sequential(*_separable(c, kernel, depth)) for c in ch)
            self.cv2 = nn.ModuleList(nn.Sequential(nn.Conv2d(c, 4 * reg_max, 1)) for c in ch)
            self.cv3 = nn.ModuleList(nn.Sequential(nn.Conv2d(c, nc, 1)) for c in ch)
        else:
            self.stem = None
            self.cv2 = nn.ModuleList(
                nn.Sequential(*_separable(c, kernel, depth), nn.Conv2d(c, 4 * reg_max, 1)) for c in ch
            )
            self.cv3 = nn.ModuleList(nn.Sequential(*_separable(c, kernel, depth), nn.Conv2d(c, nc, 1)) for c in ch)
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()  # after the branches: same init as before

    def forward_head(
        self, x: list[torch.Tensor], box_head: nn.Module | None = None, cls_head: nn.Module | None = None
    ) -> dict[str, torch.Tensor]:
        if self.stem is None:
            return super().forward_head(x, box_head, cls_head)
        if box_head is None or cls_head is None:
            return {}
        bs = x[0].shape[0]
        f = [self.stem[i](x[i]) for i in range(self.nl)]  # the shared stack, once per level
        boxes = torch.cat([box_head[i](f[i]).view(bs, 4 * self.reg_max, -1) for i in range(self.nl)], dim=-1)
        scores = torch.cat([cls_head[i](f[i]).view(bs, self.nc, -1) for i in range(self.nl)], dim=-1)
        return {"boxes": boxes, "scores": scores, "feats": x}


class SlimDetect(Detect):
    """The engine's Detect with full convolutions at a fraction of its width.

    Per level and branch: a full 3x3 conv from the input width to ``width``, a second full 3x3 conv at ``width``, then
    the 1x1 prediction conv: the engine's YOLOv5 head (two full 3x3 convs per branch) with ``width`` channels instead
    of 64 or more. At width 32 on a 64-channel neck that is ~3/8 of the engine head's multiply-adds, and every conv
    still mixes channels and space together (what the depthwise-separable LiteDetect branches do not). ``rep``: each
    3x3 conv trains as the engine's RepConv (RepVGG branches) and deploys as one 3x3 conv, as PP-PicoDet and YOLOv6 do.
    """

    def __init__(
        self, nc: int = 80, reg_max: int = 16, ch: tuple[int, ...] | list[int] = (), width: int = 32, rep: bool = False
    ):
        _init_bare(self, nc, reg_max, ch)

        def conv3(c1: int, c2: int) -> nn.Module:  # rep: 3x3 + 1x1 (+ identity BN when c1 == c2), folded at export
            return RepConv(c1, c2, 3, 1, 1, bn=c1 == c2) if rep else Conv(c1, c2, 3)

        self.cv2 = nn.ModuleList(
            nn.Sequential(conv3(c, width), conv3(width, width), nn.Conv2d(width, 4 * reg_max, 1)) for c in ch
        )
        self.cv3 = nn.ModuleList(
            nn.Sequential(conv3(c, width), conv3(width, width), nn.Conv2d(width, nc, 1)) for c in ch
        )
        self.dfl = DFL(reg_max) if reg_max > 1 else nn.Identity()
