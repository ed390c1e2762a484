"""Stage 2's Lightning data module: cached features X, labels Y and per-split masks.

:meth:`FeatureDataModule.set_features` takes ``X [N, d]``, ``Y [N, 17]`` and boolean masks per
split; loaders yield ``(x [B, d], y [B, 17], mask [B, 17])`` over the GIFs that have at least
one labelled emotion in that split, and :meth:`FeatureDataModule.full_batch` returns the same
as whole tensors (the convex solvers use full batches). ``y`` is 0 wherever ``mask`` is False
(no NaN leaks). Stage 1 (GIF files -> clips -> backbone) has its own module,
:class:`gifemo.features.clip_datamodule.ClipDataModule`.
"""
from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from gifemo.data.emotions import EMOTIONS

SPLITS = ("train", "val", "test")


class FeatureDataModule(pl.LightningDataModule):
    """Feature batches for fitting (minibatch mode), validation and test.

    Parameters
    ----------
    batch_size : int, default=256
        GIFs per batch.
    pin_memory : bool, default=False
        Page-locked host batches (faster host->GPU copies).
    seed : int, default=0
        Seed of the training loader's shuffling.
    """

    def __init__(self, batch_size: int = 256, pin_memory: bool = False, seed: int = 0) -> None:
        super().__init__()
        self.batch_size = int(batch_size)
        self.pin_memory = bool(pin_memory)
        self.seed = int(seed)
        self._features: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", "test") and self._features is None:
            raise RuntimeError(f"FeatureDataModule: call set_features(...) before the {stage!r} "
                               "stage")

    def set_features(self, X, Y, masks: dict) -> None:
        """Attach cached features and labels for the fit/validate/test stages.

        Parameters
        ----------
        X : array or Tensor, float, shape [N, d]
        Y : array or Tensor, float, shape [N, 17]
            Targets (``mu - 3 sigma``); may be NaN where the mask is False.
        masks : dict of str -> bool array [N, 17]
            Keys among ``"train"``, ``"val"``, ``"test"``: which (GIF, emotion) labels a split uses.
        """
        X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        Y = torch.as_tensor(np.asarray(Y), dtype=torch.float32)
        if X.ndim != 2:
            raise ValueError(f"X must be [N, d], got shape {tuple(X.shape)}")
        n = X.shape[0]
        if tuple(Y.shape) != (n, len(EMOTIONS)):
            raise ValueError(f"Y must be [N={n}, {len(EMOTIONS)}], got shape {tuple(Y.shape)}")
        if not torch.isfinite(X).all():
            rows = torch.nonzero(~torch.isfinite(X).all(1)).flatten()[:10].tolist()
            raise ValueError(f"X has non-finite values in rows {rows}")
        unknown = sorted(set(masks) - set(SPLITS))
        if unknown:
            raise ValueError(f"unknown split name(s) {unknown}; expected {list(SPLITS)}")
        features = {}
        for name, m in masks.items():
            M = torch.as_tensor(np.asarray(m, dtype=bool))
            if tuple(M.shape) != (n, len(EMOTIONS)):
                raise ValueError(f"mask {name!r} must be bool [N={n}, 17], got {tuple(M.shape)}")
            bad = M & ~torch.isfinite(Y)
            if bad.any():
                rows = torch.nonzero(bad.any(1)).flatten()[:10].tolist()
                raise ValueError(f"split {name!r}: Y is not finite inside the mask in rows {rows}")
            rows = M.any(1)
            y = torch.where(M, torch.nan_to_num(Y), torch.zeros(()))
            features[name] = (X[rows], y[rows], M[rows])
        self._features = features

    def full_batch(self, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(X, Y, M)`` of split ``name`` (rows with at least one labelled emotion there)."""
        if self._features is None:
            raise RuntimeError("FeatureDataModule: call set_features(...) first")
        if name not in self._features:
            raise KeyError(f"no split {name!r}; set_features got {sorted(self._features)}")
        return self._features[name]

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        ds = TensorDataset(*self.full_batch(name))
        gen = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle, generator=gen,
                          pin_memory=self.pin_memory)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
