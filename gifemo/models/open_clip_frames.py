"""open_clip image-text models as frozen frame encoders (``pip install gifemo[clip]``).

Any open_clip model (``open_clip.list_models()``, e.g. ``ViT-B-32``) embeds frames of a GIF:

- **frames** (this module's rule): the clips are single frames (:class:`ClipSpec` of length 1,
  stride 1) and :attr:`OpenClipFrames.max_clips` = ``frames`` (default 8) keeps at most that
  many, evenly spaced: frame ``floor((2i + 1) n / (2k))`` for ``i < k = min(frames, n)`` of a
  GIF of ``n`` frames (the centres of ``k`` equal segments; every frame when ``n <= k``). A
  data cap ``max_clips_per_gif`` smaller than ``frames`` wins (the demo's is 2).
- **pixels**: each frame is resized to the model's image size S×S (bilinear, antialiased)
  and kept whole (crop S). open_clip's own eval transform resizes the short side to S
  (bicubic) and centre-crops: the same for square GIFs; a non-square GIF is squashed here
  where open_clip would cut its long side's ends. Then ``(x / 255 - mean) / std`` with the
  model's (or the pretrained tag's) normalisation.
- **feature**: each frame's image embedding L2-normalised (the network's output); stage 1
  then takes the mean over frames and L2-normalises it again (as for every backbone).

The text tower is kept: :meth:`OpenClipFrames.encode_text` gives L2-normalised text
embeddings in the same space (zero-shot scoring). ``weights`` is ``"random"`` (open_clip's
init under ``torch.manual_seed(seed)``), an open_clip pretrained tag of the model (e.g.
``laion2b_s34b_b79k``: open_clip downloads and caches it), or a local state dict of the whole
CLIP model (``torch.save`` or safetensors, as ``model.state_dict()`` writes it; ``module.``
prefixes of a DDP save are accepted), named by its SHA-256.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gifemo.data.clips import ClipSpec
from gifemo.file_hash import file_sha256
from gifemo.models.backbone import Backbone
from gifemo.models.weights_file import WeightsFileError, check_keys, load_state_file

RANDOM = "random"
DEFAULT_FRAMES = 8


def _open_clip():
    try:
        import open_clip
    except ImportError as e:
        raise ImportError("the open_clip backbone needs the package open_clip_torch: "
                          "pip install 'gifemo[clip]'") from e
    return open_clip


class FrameEncoder(nn.Module):
    """Frames ``[N, 3, 1, S, S]`` (normalised) -> L2-normalised image embeddings ``[N, D]``."""

    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.clip = clip_model

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 5 or x.shape[2] != 1:
            raise ValueError(f"expected single-frame clips [N, 3, 1, H, W], got {tuple(x.shape)}")
        return F.normalize(self.clip.encode_image(x[:, :, 0]).float(), dim=-1)


class OpenClipFrames(Backbone):
    """An open_clip model's image tower on up to ``frames`` evenly spaced frames, frozen.

    Parameters
    ----------
    model : str, default="ViT-B-32"
        An open_clip model name (``open_clip.list_models()``).
    weights : str or path, default="random"
        ``"random"``, a pretrained tag of ``model`` (``open_clip.list_pretrained_tags_by_model``)
        or a local state dict file of the CLIP model.
    seed : int, default=0
        Seed of random weights (ignored otherwise).
    frames : int, default=8
        Frames per GIF at most (evenly spaced; see the module docstring).
    """

    def __init__(self, model: str = "ViT-B-32", weights: str | os.PathLike = RANDOM, seed: int = 0,
                 frames: int = DEFAULT_FRAMES) -> None:
        super().__init__()
        oc = _open_clip()
        if model not in oc.list_models():
            raise ValueError(f"unknown open_clip model {model!r}; see open_clip.list_models()")
        if isinstance(frames, bool) or int(frames) < 1:
            raise ValueError(f"frames must be a positive integer, got {frames!r}")
        self.model_name, self.weights, self.seed = model, str(weights), int(seed)
        self.name = "open_clip"
        self.max_clips = int(frames)
        tags = oc.list_pretrained_tags_by_model(model)
        self._tag = self.weights if self.weights in tags else None
        if self._tag is None and self.weights != RANDOM and not Path(self.weights).is_file():
            raise WeightsFileError(self.weights, f"not 'random', not a pretrained tag of {model} "
                                                 f"({tags}), and not an existing file")
        cfg = oc.get_model_config(model)
        size = cfg["vision_cfg"]["image_size"]
        size = int(size if isinstance(size, int) else size[0])
        pre = {"mean": oc.OPENAI_DATASET_MEAN, "std": oc.OPENAI_DATASET_STD,
               **cfg.get("preprocess_cfg", {})}
        if self._tag is not None:
            pre.update({k: v for k, v in oc.get_pretrained_cfg(model, self._tag).items()
                        if k in ("mean", "std")})
        self.mean, self.std = tuple(float(v) for v in pre["mean"]), tuple(float(v) for v in pre["std"])
        self.clip_spec = ClipSpec(length=1, stride=1, resize_hw=(size, size), crop=size)
        self._dim = int(cfg["embed_dim"])
        self._weights_id: str | None = None
        self._tokenizer = None

    @property
    def output_dim(self) -> int:
        return self._dim

    def weights_id(self) -> str:
        if self._weights_id is None:
            if self.weights == RANDOM:
                self._weights_id = f"random:seed={self.seed}"
            elif self._tag is not None:
                self._weights_id = f"open_clip:{self.model_name}:{self._tag}"
            else:
                self._weights_id = file_sha256(self.weights)
        return self._weights_id

    def settings(self) -> dict:
        """Model, frames per GIF and normalisation (weights are named by :meth:`weights_id`)."""
        return {"model": self.model_name, "frames": self.max_clips, "mean": list(self.mean),
                "std": list(self.std)}

    def build(self) -> nn.Module:
        oc = _open_clip()
        if self._tag is not None:
            clip_model = oc.create_model(self.model_name, pretrained=self._tag)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                clip_model = oc.create_model(self.model_name, pretrained=None)
            if self.weights != RANDOM:
                path = Path(self.weights)
                state = load_state_file(path)
                state = {k.removeprefix("module."): v for k, v in state.items()}
                check_keys(clip_model, state, path, f"open_clip {self.model_name}")
                clip_model.load_state_dict(state)
        return FrameEncoder(clip_model).eval().requires_grad_(False)

    def preprocess(self, clips: Tensor) -> Tensor:
        """RGB 0..255 ``[N, 3, 1, S, S]`` -> ``(x / 255 - mean) / std`` per channel."""
        mean = torch.tensor(self.mean, device=clips.device).view(1, 3, 1, 1, 1)
        std = torch.tensor(self.std, device=clips.device).view(1, 3, 1, 1, 1)
        return (clips.float() / 255.0 - mean) / std

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        """L2-normalised text embeddings, float32 ``[len(texts), output_dim]``, in the space of
        the frame embeddings (cosine = dot product)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("encode_text takes a list of strings")
        if self._tokenizer is None:
            self._tokenizer = _open_clip().get_tokenizer(self.model_name)
        clip_model = self.network.clip
        device = next(clip_model.parameters()).device
        if not texts:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        tokens = self._tokenizer(list(texts)).to(device)
        return F.normalize(clip_model.encode_text(tokens).float(), dim=-1).cpu().numpy()

    def __repr__(self) -> str:
        return (f"OpenClipFrames(model={self.model_name!r}, weights={self.weights!r}, "
                f"seed={self.seed}, frames={self.max_clips})")
