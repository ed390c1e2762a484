"""Local weights files of the frozen backbones: read a state dict, check it fits the network.

:func:`load_state_file` reads a ``torch.save`` file (``weights_only``) or a safetensors file;
:func:`check_keys` names every missing, unexpected or mis-shaped key before anything is
loaded. Both raise :class:`WeightsFileError`, whose message names the file and the reason.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn


class WeightsFileError(ValueError):
    """A weights setting or file that cannot be used; ``str()`` names it and the reason."""

    def __init__(self, where: str | os.PathLike, reason: str):
        self.path = str(where)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def load_state_file(path: Path) -> dict[str, Tensor]:
    """A state dict from a ``torch.save`` file (``weights_only``) or a safetensors file."""
    with open(path, "rb") as f:
        head = f.read(9)
    is_torch = head[:4] == b"PK\x03\x04" or head[:1] == b"\x80"
    try:
        if is_torch:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        else:
            from safetensors.torch import load_file
            obj = load_file(str(path), device="cpu")
    except Exception as e:
        kind = "torch.save" if is_torch else "safetensors"
        first = str(e).splitlines()[0] if str(e) else ""
        raise WeightsFileError(path, f"cannot read as a {kind} state dict "
                                     f"({type(e).__name__}: {first})") from e
    if not isinstance(obj, Mapping):
        raise WeightsFileError(path, f"expected a state dict (name -> tensor), got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise WeightsFileError(path, f"entries that are not tensors: {bad[:10]}")
    return dict(obj)


def check_keys(model: nn.Module, state: Mapping[str, Tensor], path, arch_name: str) -> None:
    """Raise :class:`WeightsFileError` naming every missing, unexpected or mis-shaped key."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = ([f"missing keys {missing}"] if missing else []) \
        + ([f"unexpected keys {unexpected}"] if unexpected else []) \
        + (["shape mismatches [" + "; ".join(shapes) + "]"] if shapes else [])
    if problems:
        raise WeightsFileError(path, f"weights do not fit {arch_name}: " + "; ".join(problems))
