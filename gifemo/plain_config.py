"""Hydra/OmegaConf nodes to plain Python (dicts, lists, scalars), interpolations resolved.

The one converter the library uses at its Hydra boundary, so code below it takes plain
mappings and never imports OmegaConf.
"""
from __future__ import annotations

from typing import Any


def to_plain(node: Any, resolve: bool = True) -> Any:
    """``DictConfig``/``ListConfig`` -> dict/list (recursively); anything else unchanged."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf comes with hydra-core
        return node
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=resolve)
    return node
