"""Every config group composes and instantiates; sweep keys are strict (paper-free, fast)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

from gifemo.data.tags import TagVocabulary
from gifemo.features.assemble import FeatureData
from gifemo.models.gp_recognizer import GPRecognizer
from gifemo.models.layout import FeatureLayout
from gifemo.models.linear_recognizer import LinearRecognizer
from gifemo.models.text_encoder import SentenceTagEncoder
from gifemo.training import build_model, text_encoder_of

CONF = Path(__file__).resolve().parents[1] / "conf"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _feats(group="visual_tags", dv=8, dt=3, dx=5) -> FeatureData:
    vocab = TagVocabulary(tags=["happy", "sad", "angry"][:dt])
    layout = FeatureLayout(group, dv if "visual" in group else 0, dt if "tags" in group else 0,
                           dx if "text" in group else 0)
    text = SentenceTagEncoder("unloaded", expected={"dim": dx, "weights_id": "x"})
    return FeatureData(rows=np.arange(4), X=np.zeros((4, layout.dim), np.float32), layout=layout,
                       vocabulary=vocab if layout.uses_tags else None, backbone=None, bad=[],
                       text_encoder=text if layout.uses_text else None)


def test_groups_exist_as_designed():
    assert set(_options("model")) >= {"lasso", "trace_norm", "clustered_mtl", "gp", "ridge", "none"}
    assert set(_options("features")) == {"visual", "tags", "visual_tags", "text", "visual_text",
                                         "visual_tags_text"}
    assert set(_options("data")) >= {"demo", "gifgif"}
    assert set(_options("logger")) >= {"wandb", "csv", "none"}


@pytest.mark.parametrize("model", _options("model"))
def test_every_model_instantiates_with_runtime_layout(compose_cfg, tmp_path, model):
    cfg = compose_cfg(tmp_path, [f"model={model}"])
    m = build_model(cfg.model, _feats())
    assert isinstance(m, GPRecognizer if model == "gp" else LinearRecognizer)
    if model != "gp":
        assert type(m.penalty).__name__ == cfg.model.penalty._target_.rsplit(".", 1)[1]
        assert tuple(m.head.W.shape) == (11, 17)
        for key, value in cfg.model.penalty.items():  # YAML keys are constructor kwargs, 1:1
            if key != "_target_":
                assert m.penalty.config()[key] == value
        for setting in m.cv_grid or []:  # every CV grid point builds the same kind of penalty
            assert type(m.penalty_for(setting)) is type(m.penalty)


@pytest.mark.parametrize("features", _options("features"))
def test_feature_groups(compose_cfg, tmp_path, features):
    cfg = compose_cfg(tmp_path, [f"features={features}"])
    assert cfg.features.group == features
    m = build_model(cfg.model, _feats(features))
    assert m.layout.group == features
    assert (m.text_encoder is not None) == ("text" in features)
    if "text" in features:
        assert text_encoder_of(cfg.features).model_name == cfg.features.text_model == "default"


def test_sweep_keys_must_exist_in_the_selected_model(compose_cfg, tmp_path):
    cfg = compose_cfg(tmp_path, ["model=clustered_mtl", "model.penalty.rho1=0.1", "model.penalty.rho2=10"])
    p = cfg.model.penalty
    assert (p.rho1, p.rho2, p.k) == (0.1, 10, 2)
    with pytest.raises(ConfigCompositionException):
        compose_cfg(tmp_path, ["model=lasso", "model.penalty.rho2=1"])


def test_data_module_trainer_callbacks_and_loggers_instantiate(compose_cfg, tmp_path):
    from pytorch_lightning import Trainer
    from pytorch_lightning.loggers import CSVLogger, WandbLogger

    from gifemo.data.feature_datamodule import FeatureDataModule
    from gifemo.eval.callbacks import PRMetricsCallback
    from gifemo.models.c3d import C3DBackbone

    cfg = compose_cfg(tmp_path, [])
    dm = instantiate(cfg.data.datamodule)
    assert isinstance(dm, FeatureDataModule) and dm.batch_size == cfg.data.datamodule.batch_size
    bb = instantiate(cfg.backbone)
    assert isinstance(bb, C3DBackbone) and bb.width == cfg.backbone.width
    cbs = [instantiate(c) for c in cfg.callbacks.values()]
    assert any(isinstance(c, PRMetricsCallback) for c in cbs)
    assert isinstance(instantiate(cfg.logger.csv), CSVLogger)
    trainer = instantiate(cfg.trainer, callbacks=cbs, logger=False)
    assert isinstance(trainer, Trainer)
    wcfg = compose_cfg(tmp_path, ["logger=wandb", "logger.wandb.mode=disabled"])
    assert wcfg.logger.wandb.offline is False  # no process-wide WANDB_MODE side effect
    assert isinstance(instantiate(wcfg.logger.wandb), WandbLogger)
    default = compose_cfg(tmp_path, ["logger=wandb"])
    assert default.logger.wandb.mode == "offline"  # the default needs no network
    assert compose_cfg(tmp_path, ["logger=none"]).logger in (None, {})


def test_demo_defaults_are_explicit_random_weights_and_capped_clips(compose_cfg, tmp_path):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        raw = compose("train", overrides=["paths.root_dir=/x", "paths.output_dir=/x/o"])
    assert raw.data.backbone_weights == "random" and raw.backbone.weights == "random"
    assert raw.data.max_clips_per_gif == 2 and raw.data.generate is True
    assert raw.data.manifest == "/x/data/demo"


def test_gifgif_requires_manifest_and_weights(tmp_path):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["data=gifgif", "paths.root_dir=/x",
                                          "paths.output_dir=/x/o"])
    assert OmegaConf.is_missing(cfg.data, "manifest")
    with pytest.raises((MissingMandatoryValue, InterpolationToMissingValueError)):
        _ = cfg.backbone.weights
    assert cfg.data.max_clips_per_gif is None  # the paper keeps every clip


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_experiments_compose(compose_cfg, tmp_path, experiment):
    cfg = compose_cfg(tmp_path, [f"experiment={experiment}"])
    assert cfg.task_name == experiment
    assert cfg.model._target_.startswith("gifemo.models.")
    m = build_model(cfg.model, _feats(cfg.features.group))
    assert m.layout.group == cfg.features.group


@pytest.mark.parametrize("search", _options("hparams_search"))
def test_hparams_searches_name_only_keys_of_their_model(compose_cfg, tmp_path, search):
    cfg = compose_cfg(tmp_path, [f"hparams_search={search}"], return_hydra_config=True)
    assert cfg.optimized_metric.startswith("val/") and cfg.data.val_fold is not None
    for key in cfg.hydra.sweeper.params:
        node, leaf = key.rsplit(".", 1)
        assert leaf in OmegaConf.select(cfg, node), key


@pytest.mark.parametrize("debug", _options("debug"))
def test_debug_overlays_compose(compose_cfg, tmp_path, debug):
    cfg = compose_cfg(tmp_path, [f"debug={debug}"])
    assert cfg.model._target_


def test_run_dirs_are_unique_per_run_and_per_job(compose_cfg, tmp_path):
    cfg = compose_cfg(tmp_path, [], return_hydra_config=True)
    assert "%f" in OmegaConf.to_container(cfg.hydra.run, resolve=False)["dir"]
    assert OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["subdir"] == "${hydra.job.num}"
    assert cfg.hydra.job.chdir is False


def test_minibatch_optimizer_is_a_partial(compose_cfg, tmp_path):
    cfg = compose_cfg(tmp_path, ["model=lasso", "model.fit=minibatch"])
    m = build_model(cfg.model, _feats())
    opt = m.configure_optimizers()
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["lr"] == cfg.model.optimizer.lr
