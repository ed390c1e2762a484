"""Extract (or reuse) the per-GIF visual features of a dataset into the feature cache.

A Hydra entry point over the same config groups as ``train.py`` (data, features, backbone,
extract, paths), so every override is shared::

    python scripts/extract.py data=demo
    python scripts/extract.py data=gifgif data.manifest=/data/gifgif backbone.weights=c3d.pickle \
        extract.accelerator=gpu extract.devices=4 extract.strategy=ddp extract.clip_batch_size=128

A second run with the same inputs reuses the cache in seconds; an interrupted run resumes.
Weights are never downloaded: ``backbone.weights`` is ``random`` (explicit) or a local file.
"""
import time
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from gifemo.features import ensure_visual_features
from gifemo.plain_config import to_plain
from gifemo.training import backbone_config, dataset_of

CONF = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(version_base="1.3", config_path=CONF, config_name="train")
def main(cfg: DictConfig) -> None:
    d, t0 = cfg.data, time.perf_counter()
    dataset = dataset_of(d)
    table = ensure_visual_features(dataset, str(cfg.features.cache_dir),
                                   instantiate(backbone_config(cfg)),
                                   {"max_clips_per_gif": d.get("max_clips_per_gif")},
                                   to_plain(d.decode), run=to_plain(cfg.extract),
                                   run_dir=str(cfg.paths.output_dir))
    print(f"{len(table.ids)} GIFs with features {table.visual.shape}, {len(table.bad)} bad, "
          f"{table.n_computed} computed now, {time.perf_counter() - t0:.1f} s; cache "
          f"{table.cache_dir}", flush=True)


if __name__ == "__main__":
    main()
