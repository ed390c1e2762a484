"""Cut a GIF's frames into C3D clips (Chen & Picard 2017, §3.3).

The paper uses C3D's own preprocessing: a GIF "shorter than 16 frames or not an integer
multiple of 8 frames" is padded by looping (frames from its start are appended in order)
until it has at least 16 frames and a multiple of 8; it is cut into 16-frame clips with
stride 8 (8 frames of overlap); every frame is resized to 128×171 (H×W) and centre-cropped
to 112×112.

Worked numbers: 2 frames → 16 → 1 clip; 16 → 16 → 1; 17 → 24 → 2; 347 → 352 → 43 clips
(the paper's longest GIF).

Resizing uses ``torch.nn.functional.interpolate`` (bilinear, antialiased, ``align_corners=False``)
on the uint8 frame stack, which matches PIL's bilinear resize to within one grey level (a
test checks it) and is several times faster than PIL (``benchmarks/decode.py``; the float32
path is slower). Only frames that some kept clip uses are resized, each once, however many
clips share it. The crop offset is
``(size - 112) // 2`` on each axis (rows 8..119, columns 29..140), as C3D's Caffe data layer
does. Values stay RGB 0..255 float32: the backbone applies its own weights' convention
(e.g. BGR minus the Caffe mean).

The geometry is a :class:`ClipSpec` (length, stride, resize, crop) that each backbone
declares; :data:`PAPER_CLIPS` is the paper's 16 / 8 / 128×171 / 112 and the default. The
loop-padding rule generalises as: pad to at least ``length`` frames and a multiple of
``stride``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F



@dataclass(frozen=True)
class ClipSpec:
    """Clip geometry: ``length`` frames every ``stride`` frames, each frame resized to
    ``resize_hw`` (H, W) and centre-cropped to ``crop`` × ``crop``."""

    length: int = 16
    stride: int = 8
    resize_hw: tuple[int, int] = (128, 171)
    crop: int = 112

    def __post_init__(self) -> None:
        for name in ("length", "stride", "crop"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"ClipSpec.{name} must be a positive integer, got {v!r}")
        hw = tuple(int(v) for v in self.resize_hw)
        if len(hw) != 2 or min(hw) < self.crop:
            raise ValueError(f"ClipSpec.resize_hw must be (H, W) with both >= crop={self.crop}, "
                             f"got {self.resize_hw!r}")
        object.__setattr__(self, "resize_hw", hw)

    def to_dict(self) -> dict:
        return {"length": self.length, "stride": self.stride, "resize_hw": list(self.resize_hw),
                "crop": self.crop}

    @classmethod
    def from_dict(cls, d) -> "ClipSpec":
        return cls(int(d["length"]), int(d["stride"]), tuple(d["resize_hw"]), int(d["crop"]))


PAPER_CLIPS = ClipSpec()
"""The paper's C3D clips (§3.3): 16 frames, stride 8, 128×171, centre crop 112."""

_log = logging.getLogger(__name__)
_cap_reported = False


def padded_length(n_frames: int, spec: ClipSpec = PAPER_CLIPS) -> int:
    """Frame count after loop-padding: the smallest multiple of ``stride`` (8) that is
    ``>= max(n, length)`` (16).

    Parameters
    ----------
    n_frames : int
        Frames in the GIF (at least 1).

    Returns
    -------
    int
        ``max(16, 8 * ceil(n_frames / 8))`` for the paper's spec.
    """
    n = _check_n_frames(n_frames)
    return max(spec.length, -(-n // spec.stride) * spec.stride)


def clip_starts(n_frames: int, max_clips: int | None = None,
                spec: ClipSpec = PAPER_CLIPS) -> list[int]:
    """Start frames (in the padded sequence) of the clips cut from a GIF of ``n_frames``.

    Parameters
    ----------
    n_frames : int
        Frames in the GIF (at least 1).
    max_clips : int or None, default=None
        Keep at most this many clips, evenly spaced: clip ``floor((2i + 1) · n / (2k))`` for
        ``i = 0..k-1`` (the centre of each of ``k`` equal segments, so one clip is the middle
        one). ``None`` keeps all.

    Returns
    -------
    list of int
        Ascending starts ``0, 8, 16, …, padded_length - 16`` (or the capped subset).
    """
    n_total = (padded_length(n_frames, spec) - spec.length) // spec.stride + 1
    keep = list(range(n_total))
    if max_clips is not None:
        if isinstance(max_clips, bool) or not isinstance(max_clips, (int, np.integer)) or max_clips < 1:
            raise ValueError(f"max_clips must be a positive integer or None, got {max_clips!r}")
        k = int(max_clips)
        if n_total > k:
            keep = [((2 * i + 1) * n_total) // (2 * k) for i in range(k)]
            _report_cap(n_frames, n_total, k)
    return [i * spec.stride for i in keep]


def make_clips(rgb: np.ndarray, max_clips: int | None = None,
               spec: ClipSpec = PAPER_CLIPS) -> torch.Tensor:
    """Loop-pad, cut, resize and centre-crop a GIF's frames into C3D clips (§3.3).

    Parameters
    ----------
    rgb : np.ndarray of uint8, shape (T, H, W, 3)
        Decoded RGB frames, T >= 1.
    max_clips : int or None, default=None
        Cap on clips per GIF (evenly spaced, see :func:`clip_starts`).
    spec : ClipSpec, default=PAPER_CLIPS

    Returns
    -------
    torch.Tensor of float32, shape (n_clips, 3, length, crop, crop)
        RGB values in 0..255, no mean subtraction or scaling.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[-1] != 3:
        desc = f"{type(rgb).__name__} {getattr(rgb, 'dtype', '')} {getattr(rgb, 'shape', '')}"
        raise ValueError(f"rgb must be a uint8 array of shape (T, H, W, 3), got {desc}")
    n_frames, height, width, _ = rgb.shape
    if n_frames < 1 or height < 1 or width < 1:
        raise ValueError(f"rgb has no pixels: shape {rgb.shape}")
    starts = clip_starts(n_frames, max_clips, spec)
    # Frame of the original GIF shown at each padded position of each clip.
    padded_pos = np.asarray(starts)[:, None] + np.arange(spec.length)[None, :]
    source = padded_pos % n_frames                      # (n_clips, 16)
    used, inverse = np.unique(source, return_inverse=True)
    frames = _resize_crop(rgb[used], spec)              # (n_used, 3, crop, crop) uint8
    clips = frames[torch.from_numpy(inverse.reshape(source.shape))]  # (n_clips, 16, 3, 112, 112)
    # One pass into the float32 output (.to(float32).contiguous() would copy twice).
    out = torch.empty((len(starts), 3, spec.length, spec.crop, spec.crop), dtype=torch.float32)
    out.copy_(clips.permute(0, 2, 1, 3, 4))
    return out


def _resize_crop(frames: np.ndarray, spec: ClipSpec) -> torch.Tensor:
    """Resize uint8 (n, H, W, 3) frames to ``spec.resize_hw`` and centre-crop → uint8 (n, 3, crop, crop)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # channels-last strides
    if tuple(x.shape[-2:]) != spec.resize_hw:
        x = F.interpolate(x, size=spec.resize_hw, mode="bilinear", align_corners=False,
                          antialias=True)
    top = (spec.resize_hw[0] - spec.crop) // 2
    left = (spec.resize_hw[1] - spec.crop) // 2
    return x[:, :, top:top + spec.crop, left:left + spec.crop]


def _check_n_frames(n_frames: int) -> int:
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames!r}")
    return int(n_frames)


def _report_cap(n_frames: int, n_total: int, k: int) -> None:
    """Say once at INFO (then at DEBUG per GIF) that the clip cap dropped clips."""
    global _cap_reported
    level = logging.DEBUG if _cap_reported else logging.INFO
    _cap_reported = True
    _log.log(level, "clip cap: a GIF of %d frames gives %d clips; keeping %d evenly spaced "
             "(max_clips=%d; further caps are logged at DEBUG)", n_frames, n_total, k, k)
