"""Train and evaluate emotion recognizers: python train.py [model=clustered_mtl] [key=value ...]

Thin Hydra entry point; the work is gifemo.training.run_train. Returns the metric named by
`optimized_metric` so that sweepers (-m / hparams_search) can use it.
"""
import hydra
from omegaconf import DictConfig

from gifemo.training import get_metric_value, run_train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics, _ = run_train(cfg)
    return get_metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
