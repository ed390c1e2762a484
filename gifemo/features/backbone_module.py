"""LightningModule that runs a frozen :class:`~gifemo.models.backbone.Backbone` over clip
batches (stage 1 ``predict``).

Precision is the Trainer's (``bf16-mixed`` autocasts the convolutions; the backbone's
``preprocess`` stays float32). ``channels_last`` stores the network and its input in
``torch.channels_last_3d`` (NDHWC), the layout cuDNN's fastest 3-D convolutions use;
``compile`` wraps the network in ``torch.compile`` (worth it for long GPU runs only: the
first batches pay the compile time).
"""
from __future__ import annotations

import pytorch_lightning as pl
import torch

from gifemo.models.backbone import Backbone


class BackboneModule(pl.LightningModule):
    """``predict_step(ClipBatch) -> features float32 [b, output_dim]``."""

    def __init__(self, backbone: Backbone, channels_last: bool = False, compile: bool = False):
        super().__init__()
        self.backbone = backbone
        self.network = backbone.network
        self.channels_last = bool(channels_last)
        self.compile = bool(compile)
        self._forward = self.network

    def setup(self, stage: str) -> None:
        if self.channels_last:
            self.network.to(memory_format=torch.channels_last_3d)
        if self.compile:
            self._forward = torch.compile(self.network)

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        clips = batch.clips
        if clips.shape[0] == 0:
            return torch.zeros((0, self.backbone.output_dim), device=clips.device)
        x = self.backbone.preprocess(clips.float())
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return self._forward(x).float()
