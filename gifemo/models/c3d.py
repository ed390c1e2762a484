"""Frozen C3D backbone up to fc6 (Tran et al. 2015; GIFGIF+ paper §3.3).

Architecture (3x3x3 convolutions, padding 1, ReLU after every conv and fc6)::

    conv1 64 -> pool1 (1,2,2) -> conv2 128 -> pool2 (2,2,2) -> conv3a, conv3b 256 -> pool3
    -> conv4a, conv4b 512 -> pool4 -> conv5a, conv5b 512 -> pool5 (2,2,2) pad (0,1,1)
    -> flatten 8192 -> fc6 4096 (ReLU)

for a clip of 16 frames of 112x112; 61 M parameters up to fc6. A ``width`` factor scales
every channel count and fc6 (``width=1`` is the paper's network) so tests can run the same
architecture narrow.

Weights and their input conventions
-----------------------------------
The backbone is frozen: it is only ever used for feature extraction (paper §3.3), so
:func:`build_backbone` returns it in ``eval()`` mode with ``requires_grad=False`` and
:meth:`C3D.train` refuses to leave eval mode. Two weight formats are read, nothing is
downloaded:

(a) the widely used PyTorch conversion of the Sports-1M Caffe model (``c3d.pickle``): a
    ``torch.save``-d state dict with keys ``conv1 ... conv5b, fc6, fc7, fc8``
    (``.weight``/``.bias``). fc6 and below are loaded; fc7/fc8 (the Sports-1M classifier)
    are ignored. These weights come from Caffe and expect Caffe input: BGR channel order,
    0-255 values minus the per-channel mean (B, G, R) = (104, 117, 128) -- convention
    ``"caffe-bgr-mean"``.
(b) a safetensors file of this module (:func:`save_c3d_safetensors`), whose metadata names
    its input convention and width.

Random initialisation happens only when ``weights="random"`` is asked for explicitly. The
input convention travels with the weights (:class:`WeightsInfo`) and is applied by
:meth:`C3D.preprocess` / :func:`preprocess`, so callers always hand over RGB 0-255 clips
exactly as :func:`gifemo.data.clips.make_clips` produces them.

Files are read with ``torch.load(weights_only=True)`` (no code execution) or safetensors.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gifemo.data.clips import PAPER_CLIPS
from gifemo.file_hash import file_sha256
from gifemo.models.backbone import Backbone

CLIP_SHAPE = (3, 16, 112, 112)
"""(channels, frames, height, width) of one input clip."""

RANDOM = "random"

# Layer name -> output channels at width 1, in network order (names match format (a) keys).
_CONV_CHANNELS: dict[str, int] = {
    "conv1": 64, "conv2": 128, "conv3a": 256, "conv3b": 256,
    "conv4a": 512, "conv4b": 512, "conv5a": 512, "conv5b": 512,
}
# A max-pool follows these convs: (kernel = stride, padding).
_POOL_AFTER: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "conv1": ((1, 2, 2), (0, 0, 0)),
    "conv2": ((2, 2, 2), (0, 0, 0)),
    "conv3b": ((2, 2, 2), (0, 0, 0)),
    "conv4b": ((2, 2, 2), (0, 0, 0)),
    "conv5b": ((2, 2, 2), (0, 1, 1)),
}
FC6_DIM = 4096
_POOL5_VOXELS = 1 * 4 * 4  # pool5 output for a 16x112x112 clip: T=1, H=W=4
IGNORED_KEYS_PREFIXES = ("fc7.", "fc8.")
"""Format (a) keys that belong to the Sports-1M classifier and are deliberately not loaded."""


class C3DWeightsError(ValueError):
    """A weights file that cannot be used; ``str()`` names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


# --------------------------------------------------------------------------- conventions

@dataclass(frozen=True)
class InputConvention:
    """How a set of weights wants its input: channel order, mean (0-255 scale), scale.

    ``preprocess(x) = (x[:, order] - mean) * scale`` for RGB 0-255 input ``x``; ``mean`` is
    given in the *target* channel order.
    """

    name: str
    channel_order: str  # "RGB" or "BGR"
    mean: tuple[float, float, float]
    scale: float = 1.0


CONVENTIONS: dict[str, InputConvention] = {
    # Caffe C3D (Sports-1M) and its PyTorch conversion: BGR, 0-255 minus (104, 117, 128).
    "caffe-bgr-mean": InputConvention("caffe-bgr-mean", "BGR", (104.0, 117.0, 128.0)),
    # Raw RGB 0-255, no normalisation.
    "rgb-0-255": InputConvention("rgb-0-255", "RGB", (0.0, 0.0, 0.0)),
}
DEFAULT_CONVENTION = "caffe-bgr-mean"


def get_convention(name: str) -> InputConvention:
    """Look up an input convention by name (raises ``ValueError`` listing the known ones)."""
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown input convention {name!r}; known: {sorted(CONVENTIONS)}") from None


def preprocess(clips: Tensor, convention: str | InputConvention) -> Tensor:
    """Map RGB 0-255 clips ``[N, 3, T, H, W]`` to the input a set of weights expects.

    Parameters
    ----------
    clips : Tensor, float, shape [N, 3, T, H, W]
        RGB, values 0..255 (as :func:`gifemo.data.clips.make_clips` returns them).
    convention : str or InputConvention

    Returns
    -------
    Tensor, same shape and dtype.
    """
    conv = get_convention(convention) if isinstance(convention, str) else convention
    if clips.ndim != 5 or clips.shape[1] != 3:
        raise ValueError(f"clips must have shape [N, 3, T, H, W], got {tuple(clips.shape)}")
    if conv.channel_order == "BGR":
        clips = clips.flip(1)
    elif conv.channel_order != "RGB":
        raise ValueError(f"convention {conv.name!r}: channel_order must be RGB or BGR")
    mean = torch.tensor(conv.mean, dtype=clips.dtype, device=clips.device).view(1, 3, 1, 1, 1)
    out = clips - mean
    return out * conv.scale if conv.scale != 1.0 else out


# --------------------------------------------------------------------------- the network

def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class C3D(nn.Module):
    """C3D up to fc6 (+ReLU): ``[N, 3, 16, 112, 112] -> [N, output_dim]``.

    Parameters
    ----------
    width : float, default=1.0
        Multiplies every channel count and fc6's size (1.0 = the paper's network, fc6 4096).
    convention : str, default="caffe-bgr-mean"
        Input convention of the weights this module holds; used by :meth:`preprocess`.

    Notes
    -----
    Submodule names equal the keys of the common PyTorch conversion of the Sports-1M model,
    so its state dict loads without renaming. ``forward`` takes *preprocessed* input;
    :meth:`embed` takes RGB 0-255 clips and applies :meth:`preprocess` first.
    """

    def __init__(self, width: float = 1.0, convention: str = DEFAULT_CONVENTION):
        super().__init__()
        if not (isinstance(width, (int, float)) and 0 < width <= 4):
            raise ValueError(f"width must be a number in (0, 4], got {width!r}")
        get_convention(convention)
        self.width = float(width)
        self.convention = convention
        in_ch = 3
        for name, ch in _CONV_CHANNELS.items():
            out_ch = _scaled(ch, width)
            self.add_module(name, nn.Conv3d(in_ch, out_ch, kernel_size=3, padding=1))
            in_ch = out_ch
        self.output_dim = _scaled(FC6_DIM, width)
        self.fc6 = nn.Linear(in_ch * _POOL5_VOXELS, self.output_dim)
        self.eval()
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        """fc6 activations (after ReLU) of preprocessed clips ``[N, 3, 16, 112, 112]``."""
        if x.ndim != 5 or tuple(x.shape[1:]) != CLIP_SHAPE:
            raise ValueError(f"C3D expects clips of shape [N, {', '.join(map(str, CLIP_SHAPE))}], "
                             f"got {tuple(x.shape)}")
        for name in _CONV_CHANNELS:
            x = torch.relu(getattr(self, name)(x))
            if name in _POOL_AFTER:
                kernel, pad = _POOL_AFTER[name]
                x = F.max_pool3d(x, kernel, stride=kernel, padding=pad)
        return torch.relu(self.fc6(x.flatten(1)))

    def preprocess(self, clips: Tensor) -> Tensor:
        """Apply this module's weights' input convention to RGB 0-255 clips."""
        return preprocess(clips, self.convention)

    def embed(self, clips: Tensor) -> Tensor:
        """fc6 features of RGB 0-255 clips (``forward(preprocess(clips))``)."""
        return self(self.preprocess(clips))

    def train(self, mode: bool = True) -> "C3D":
        """Stay in eval mode: the backbone is frozen (paper §3.3 uses it as a fixed extractor)."""
        return super().train(False)


def count_parameters(module: nn.Module) -> int:
    """Total number of parameters (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def init_random_(model: C3D, seed: int = 0) -> C3D:
    """Kaiming-normal (fan_in, ReLU) weights, zero biases, from a private generator.

    The same ``seed`` gives the same weights on every machine and device (init on CPU).
    """
    gen = torch.Generator().manual_seed(int(seed))
    for module in model.modules():
        if isinstance(module, (nn.Conv3d, nn.Linear)):
            w = torch.empty(module.weight.shape)
            nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu", generator=gen)
            module.weight.copy_(w)
            module.bias.zero_()
    return model


# --------------------------------------------------------------------------- weight files

@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a backbone holds: file path, its SHA-256 (or ``"random"``), convention.

    ``width`` and ``seed`` complete the identity of random weights; :attr:`weights_id` is the
    one string to compare (checkpoints, feature caches).
    """

    path: str
    sha256: str
    convention: str
    width: float = 1.0
    seed: int | None = None

    @property
    def is_random(self) -> bool:
        return self.sha256 == RANDOM

    @property
    def weights_id(self) -> str:
        """SHA-256 of the weights file, or ``random:seed=S:width=W`` for random weights."""
        if self.is_random:
            return f"random:seed={self.seed}:width={self.width:g}"
        return self.sha256

    def to_dict(self) -> dict:
        """Primitives only (for checkpoints loaded with ``weights_only=True``)."""
        return asdict(self)


class C3DWeights(NamedTuple):
    """Contents of a weights file: fc6-and-below state dict, its convention and width."""

    state_dict: dict[str, Tensor]
    convention: str
    width: float | None  # None when the file does not say (format (a) is width 1)
    format: str  # "torch" (format (a)) or "safetensors" (format (b))




def _sniff_format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(9)
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        return "torch"  # torch.save zip archive, or legacy pickle
    if len(head) == 9 and head[8:9] == b"{":
        n = int.from_bytes(head[:8], "little")
        if 0 < n <= path.stat().st_size - 8:
            return "safetensors"
        raise C3DWeightsError(path, f"truncated safetensors file (header of {n} bytes, "
                                    f"file of {path.stat().st_size} bytes)")
    raise C3DWeightsError(path, "not a C3D weights file: neither a torch.save state dict "
                                "nor a safetensors file")


def _load_torch(path: Path) -> dict[str, Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, unpickling refused, ... -> one typed error
        raise C3DWeightsError(path, f"cannot read torch.save file ({type(e).__name__}: "
                                    f"{str(e).splitlines()[0] if str(e) else ''})") from e
    if not isinstance(obj, Mapping):
        raise C3DWeightsError(path, f"expected a state dict (mapping of name -> tensor), "
                                    f"got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise C3DWeightsError(path, f"entries that are not tensors: {bad[:10]}")
    return dict(obj)


def _load_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        tensors = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    except Exception as e:
        raise C3DWeightsError(path, f"cannot read safetensors file ({type(e).__name__}: {e})") from e
    return tensors, metadata


def load_c3d_weights(path: str | os.PathLike) -> C3DWeights:
    """Read a C3D weights file of format (a) (torch.save) or (b) (safetensors).

    fc7/fc8 entries of format (a) are dropped. Raises :class:`C3DWeightsError` naming the
    file for a missing, truncated or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise C3DWeightsError(path, "weights file not found (nothing is downloaded; pass a "
                                    "local file or weights='random')")
    fmt = _sniff_format(path)
    if fmt == "torch":
        state = _load_torch(path)
        convention, width = DEFAULT_CONVENTION, None
    else:
        state, meta = _load_safetensors(path)
        if "convention" not in meta:
            raise C3DWeightsError(path, "safetensors metadata has no 'convention' (export it "
                                        "with gifemo.models.c3d.save_c3d_safetensors)")
        convention = meta["convention"]
        if convention not in CONVENTIONS:
            raise C3DWeightsError(path, f"unknown input convention {convention!r} in metadata; "
                                        f"known: {sorted(CONVENTIONS)}")
        width = float(meta["width"]) if "width" in meta else None
    state = {k: v for k, v in state.items() if not k.startswith(IGNORED_KEYS_PREFIXES)}
    return C3DWeights(state, convention, width, fmt)


def check_state_dict(model: nn.Module, state: Mapping[str, Tensor], path: str | os.PathLike) -> None:
    """Raise :class:`C3DWeightsError` naming every missing, unexpected or mis-shaped key."""
    expected = model.state_dict()
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if shapes:
        problems.append("shape mismatches [" + "; ".join(shapes) + "]")
    if problems:
        width = getattr(model, "width", None)
        raise C3DWeightsError(path, "weights do not fit C3D(width="
                                    f"{width:g}): " + "; ".join(problems))


def save_c3d_safetensors(model: C3D, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights as safetensors (format (b)) with convention and width metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "gifemo-c3d", "convention": model.convention,
                                          "width": repr(model.width)})
    return path


def build_backbone(weights: str | os.PathLike = RANDOM, width: float = 1.0, seed: int = 0,
                   convention: str | None = None) -> tuple[C3D, WeightsInfo]:
    """The frozen C3D and the identity of its weights.

    Parameters
    ----------
    weights : str or path, default="random"
        ``"random"`` (explicit random init from ``seed``) or a weights file, format (a) or (b).
    width : float, default=1.0
        Channel width factor; must match the file's (format (b) records it).
    seed : int, default=0
        Seed of the random init (ignored for files).
    convention : str, optional
        Override the input convention (default: the file's; ``"caffe-bgr-mean"`` for format
        (a) and for random weights, so random runs exercise the paper's preprocessing).

    Returns
    -------
    (C3D in eval mode with requires_grad False, WeightsInfo)
    """
    if str(weights) == RANDOM:
        conv = convention or DEFAULT_CONVENTION
        model = init_random_(C3D(width, conv), seed)
        return model, WeightsInfo(RANDOM, RANDOM, conv, float(width), int(seed))
    path = Path(weights)
    loaded = load_c3d_weights(path)
    if loaded.width is not None and loaded.width != float(width):
        raise C3DWeightsError(path, f"file holds C3D(width={loaded.width:g}) but width={width:g} "
                                    f"was asked for")
    conv = convention or loaded.convention
    model = C3D(width, conv)
    check_state_dict(model, loaded.state_dict, path)
    model.load_state_dict({k: v.to(torch.float32) for k, v in loaded.state_dict.items()})
    model.eval()
    model.requires_grad_(False)
    info = WeightsInfo(str(path.resolve()), file_sha256(path), conv, float(width), None)
    return model, info


def weights_info(weights: str | os.PathLike = RANDOM, width: float = 1.0, seed: int = 0,
                 convention: str | None = None) -> WeightsInfo:
    """The :class:`WeightsInfo` that :func:`build_backbone` would return, without building.

    Hashes the file and reads only a safetensors header, so a caller can look up a feature
    cache keyed by the weights before paying for loading them.
    """
    if str(weights) == RANDOM:
        conv = convention or DEFAULT_CONVENTION
        get_convention(conv)
        return WeightsInfo(RANDOM, RANDOM, conv, float(width), int(seed))
    path = Path(weights)
    if not path.is_file():
        raise C3DWeightsError(path, "weights file not found (nothing is downloaded; pass a "
                                    "local file or weights='random')")
    conv = convention
    if conv is None:
        if _sniff_format(path) == "safetensors":
            from safetensors import safe_open
            try:
                with safe_open(str(path), framework="pt", device="cpu") as f:
                    conv = (f.metadata() or {}).get("convention")
            except Exception as e:
                raise C3DWeightsError(path, f"cannot read safetensors file ({type(e).__name__}: {e})") from e
            if conv is None:
                raise C3DWeightsError(path, "safetensors metadata has no 'convention'")
        else:
            conv = DEFAULT_CONVENTION
    get_convention(conv)
    return WeightsInfo(str(path.resolve()), file_sha256(path), conv, float(width), None)


# --------------------------------------------------------------------------- the Backbone

class C3DBackbone(Backbone):
    """The paper's frozen C3D to fc6 behind the :class:`~gifemo.models.backbone.Backbone`
    interface (``conf/backbone/c3d.yaml``); arguments as :func:`build_backbone`'s. Weights
    are hashed on first use of :meth:`weights_id`, the network built on first use."""

    name = "c3d"
    clip_spec = PAPER_CLIPS

    def __init__(self, weights: str | os.PathLike = RANDOM, width: float = 1.0, seed: int = 0,
                 convention: str | None = None) -> None:
        super().__init__()
        if not (isinstance(width, (int, float)) and 0 < width <= 4):
            raise ValueError(f"width must be a number in (0, 4], got {width!r}")
        self.weights, self.width, self.seed = str(weights), float(width), int(seed)
        self.convention = convention
        self._info: WeightsInfo | None = None

    @property
    def info(self) -> WeightsInfo:
        if self._info is None:
            self._info = weights_info(self.weights, self.width, self.seed, self.convention)
        return self._info

    @property
    def output_dim(self) -> int:
        return _scaled(FC6_DIM, self.width)

    def weights_id(self) -> str:
        return self.info.weights_id

    def settings(self) -> dict:
        """Width and input convention (the weights are named by :meth:`weights_id`)."""
        return {"width": self.width, "convention": self.info.convention}

    def __repr__(self) -> str:
        return (f"C3DBackbone(weights={self.weights!r}, width={self.width:g}, seed={self.seed}, "
                f"convention={self.convention!r})")

    def build(self) -> C3D:
        model, self._info = build_backbone(self.weights, self.width, self.seed, self.convention)
        return model

    def preprocess(self, clips: Tensor) -> Tensor:
        return preprocess(clips, self.info.convention)
