"""torchvision's Kinetics-400 video classifiers as frozen visual backbones.

``r3d_18``, ``mc3_18``, ``r2plus1d_18`` (3D / mixed / (2+1)D ResNet-18), ``s3d``, ``mvit_v2_s``
and ``swin3d_t`` with the classification head removed: the feature is the pooled penultimate
layer (the head is replaced by ``nn.Identity``). Clip geometry and normalisation come from
torchvision's ``*_Weights.KINETICS400_V1`` metadata (``transforms()``: crop, resize, mean,
std); the clip length is the ``clip_len`` torchvision evaluated the weights with (its
``_docs``), stride half of it. torchvision resizes the transformers' and S3D's frames by the
short side (256); :class:`~gifemo.data.clips.ClipSpec` resizes to a fixed H×W, so those use
256×256 (S3D's own resize is 256×256).

``weights`` is ``"random"`` (torchvision's own init under ``torch.manual_seed(seed)``), a
torchvision weights name such as ``"KINETICS400_V1"`` (torchvision downloads and caches the
file itself), or a local state dict (``torch.save`` or safetensors; a full torchvision
checkpoint or one without the head), loaded ``weights_only`` and named by its SHA-256.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision.models.video as tv_video
from torch import Tensor, nn

from gifemo.data.clips import ClipSpec
from gifemo.file_hash import file_sha256
from gifemo.models.backbone import Backbone
from gifemo.models.weights_file import WeightsFileError, check_keys, load_state_file

RANDOM = "random"


@dataclass(frozen=True)
class VideoArch:
    """One torchvision video model: builder, weights enum, evaluated clip length, head, dim."""

    builder: str
    weights_enum: str
    clip_len: int
    head: str  # attribute holding the classifier; replaced by nn.Identity
    output_dim: int  # size of the pooled penultimate layer (checked when built)


ARCHS: dict[str, VideoArch] = {
    "r3d_18": VideoArch("r3d_18", "R3D_18_Weights", 16, "fc", 512),
    "mc3_18": VideoArch("mc3_18", "MC3_18_Weights", 16, "fc", 512),
    "r2plus1d_18": VideoArch("r2plus1d_18", "R2Plus1D_18_Weights", 16, "fc", 512),
    "s3d": VideoArch("s3d", "S3D_Weights", 128, "classifier", 1024),
    "mvit_v2_s": VideoArch("mvit_v2_s", "MViT_V2_S_Weights", 16, "head", 768),
    "swin3d_t": VideoArch("swin3d_t", "Swin3D_T_Weights", 32, "head", 768),
}


VideoWeightsError = WeightsFileError  # the name this module's errors had first


def _kinetics_transform(arch: VideoArch):
    """torchvision's eval transform of the Kinetics-400 weights (crop, resize, mean, std)."""
    return getattr(tv_video, arch.weights_enum).KINETICS400_V1.transforms()


def clip_spec_for(arch: VideoArch, length: int | None = None) -> ClipSpec:
    """The clips torchvision's weights expect: ``length`` (default ``clip_len``) frames every
    ``length // 2``, resized to the weights' resize size (a short side ``s`` becomes s×s)."""
    t = _kinetics_transform(arch)
    resize = list(t.resize_size)
    hw = (resize[0], resize[0]) if len(resize) == 1 else (resize[0], resize[1])
    length = arch.clip_len if length is None else int(length)
    return ClipSpec(length=length, stride=max(1, length // 2), resize_hw=hw, crop=int(t.crop_size[0]))


class TorchvisionVideoBackbone(Backbone):
    """A torchvision video classifier to its pooled penultimate layer, frozen.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHS` (``r3d_18``, ``mc3_18``, ``r2plus1d_18``, ``s3d``, ``mvit_v2_s``,
        ``swin3d_t``).
    weights : str or path, default="random"
        ``"random"``, a torchvision weights name of the arch (e.g. ``"KINETICS400_V1"``), or
        a local ``torch.save`` / safetensors state dict.
    seed : int, default=0
        Seed of random weights (ignored otherwise).
    clip_length : int, optional
        Frames per clip (default: the length torchvision evaluated the weights with).
    """

    def __init__(self, arch: str, weights: str | os.PathLike = RANDOM, seed: int = 0,
                 clip_length: int | None = None) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown torchvision video arch {arch!r}; known: {sorted(ARCHS)}")
        self.arch = ARCHS[arch]
        self.name = arch
        self.weights, self.seed = str(weights), int(seed)
        self.clip_length = None if clip_length is None else int(clip_length)
        self.clip_spec = clip_spec_for(self.arch, self.clip_length)
        enum_cls = getattr(tv_video, self.arch.weights_enum)
        min_len = enum_cls.KINETICS400_V1.meta.get("min_temporal_size", 1)
        if self.clip_spec.length < min_len:
            raise ValueError(f"{arch} needs clips of at least {min_len} frames "
                             f"(torchvision's min_temporal_size), got clip_length={self.clip_length}")
        t = _kinetics_transform(self.arch)
        self.mean, self.std = tuple(t.mean), tuple(t.std)
        self._enum = self._resolve_enum()
        if self._enum is None and self.weights != RANDOM and not Path(self.weights).is_file():
            raise VideoWeightsError(self.weights, f"not 'random', not a torchvision weights name "
                                                  f"of {arch} ({sorted(enum_cls.__members__)}), "
                                                  "and not an existing file")
        self._weights_id: str | None = None

    def _resolve_enum(self):
        enum_cls = getattr(tv_video, self.arch.weights_enum)
        return enum_cls.__members__.get(self.weights)

    @property
    def output_dim(self) -> int:
        return self.arch.output_dim

    def weights_id(self) -> str:
        if self._weights_id is None:
            if self.weights == RANDOM:
                self._weights_id = f"random:seed={self.seed}"
            elif self._enum is not None:
                file = self._enum.url.rsplit("/", 1)[-1]
                self._weights_id = f"torchvision:{self.arch.weights_enum}.{self._enum.name}:{file}"
            else:
                self._weights_id = file_sha256(self.weights)
        return self._weights_id

    def settings(self) -> dict:
        """Arch and normalisation (weights are named by :meth:`weights_id`)."""
        return {"arch": self.name, "mean": list(self.mean), "std": list(self.std)}

    def build(self) -> nn.Module:
        builder = getattr(tv_video, self.arch.builder)
        if self._enum is not None:
            model = builder(weights=self._enum)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model = builder(weights=None)
        head = getattr(model, self.arch.head)
        in_dim = _head_input_dim(head)
        if in_dim != self.arch.output_dim:
            raise RuntimeError(f"{self.name}: head takes {in_dim} features, expected {self.arch.output_dim}")
        setattr(model, self.arch.head, nn.Identity())
        if self._enum is None and self.weights != RANDOM:
            path = Path(self.weights)
            state = load_state_file(path)
            state = {k: v for k, v in state.items() if not k.startswith(self.arch.head + ".")}
            check_keys(model, state, path, self.name)
            model.load_state_dict(state)
        return model.eval().requires_grad_(False)

    def preprocess(self, clips: Tensor) -> Tensor:
        """RGB 0..255 ``[N, 3, L, H, W]`` -> ``(x / 255 - mean) / std`` per channel."""
        mean = torch.tensor(self.mean, device=clips.device).view(1, 3, 1, 1, 1)
        std = torch.tensor(self.std, device=clips.device).view(1, 3, 1, 1, 1)
        return (clips.float() / 255.0 - mean) / std

    def __repr__(self) -> str:
        return (f"TorchvisionVideoBackbone(arch={self.name!r}, weights={self.weights!r}, "
                f"seed={self.seed}, clip_length={self.clip_length!r})")


def _head_input_dim(head: nn.Module) -> int:
    """Input features of a classifier head (Linear, or the last Linear / 1×1×1 Conv3d in it)."""
    layers = [m for m in head.modules() if isinstance(m, (nn.Linear, nn.Conv3d))]
    last = layers[-1]
    return last.in_features if isinstance(last, nn.Linear) else last.in_channels
