"""torchvision video backbones: frozen, headless, clip spec from the weights' metadata, weights
random / torchvision name / local file (exact round trip, clear errors), through train.py."""
from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gifemo.file_hash import file_sha256
from gifemo.models.backbone import same_backbone
from gifemo.models.torchvision_video import ARCHS, TorchvisionVideoBackbone, VideoWeightsError

LIGHT = ["r3d_18", "mc3_18", "r2plus1d_18"]  # 16x112x112 clips: ~2 s a forward on 2 cores
HEAVY = ["s3d", "mvit_v2_s", "swin3d_t"]       # 224 crops: ~10 s a forward on 2 cores
EXPECTED = {  # (output_dim, length, resize_hw, crop, mean[0]) from torchvision's docs/meta
    "r3d_18": (512, 16, (128, 171), 112, 0.43216),
    "mc3_18": (512, 16, (128, 171), 112, 0.43216),
    "r2plus1d_18": (512, 16, (128, 171), 112, 0.43216),
    "s3d": (1024, 128, (256, 256), 224, 0.43216),
    "mvit_v2_s": (768, 16, (256, 256), 224, 0.45),
    "swin3d_t": (768, 32, (256, 256), 224, 0.485),
}


def _one_clip(backbone, seed=0):
    s = backbone.clip_spec
    g = torch.Generator().manual_seed(seed)
    return torch.rand((1, 3, s.length, s.crop, s.crop), generator=g) * 255


def _check_embeds(arch):
    bb = TorchvisionVideoBackbone(arch)
    dim, length, hw, crop, mean0 = EXPECTED[arch]
    assert (bb.output_dim, bb.clip_spec.length, bb.clip_spec.resize_hw, bb.clip_spec.crop) == \
        (dim, length, hw, crop)
    assert bb.mean[0] == pytest.approx(mean0) and bb.clip_spec.stride == length // 2
    net = bb.network
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    y = bb.embed(_one_clip(bb))
    assert y.shape == (1, dim) and torch.isfinite(y).all() and y.abs().sum() > 0


@pytest.mark.parametrize("arch", LIGHT)
def test_light_backbone_embeds_one_clip(arch):
    _check_embeds(arch)


@pytest.mark.slow
@pytest.mark.parametrize("arch", HEAVY)
def test_heavy_backbone_embeds_one_clip(arch):
    _check_embeds(arch)


def test_every_arch_has_a_yaml_that_composes_to_it():
    for arch in ARCHS:
        node = OmegaConf.load(f"conf/backbone/{arch}.yaml")
        node.weights = "random"
        bb = instantiate(node)
        assert isinstance(bb, TorchvisionVideoBackbone) and bb.name == arch


def test_local_file_round_trips_exactly(tmp_path):
    """torch.save and safetensors files of a random instance give the same features; a full
    torchvision checkpoint (with its 400-class head) loads too; weights_id = file SHA-256."""
    from safetensors.torch import save_file

    src = TorchvisionVideoBackbone("mc3_18", seed=3)
    clip = _one_clip(src)
    ref = src.embed(clip)
    pt, st, full = tmp_path / "w.pt", tmp_path / "w.safetensors", tmp_path / "full.pth"
    torch.save(src.network.state_dict(), pt)
    save_file({k: v.contiguous() for k, v in src.network.state_dict().items()}, str(st))
    import torchvision.models.video as tv
    torch.manual_seed(3)
    torch.save(tv.mc3_18().state_dict(), full)  # torchvision's own layout, head included
    for path in (pt, st, full):
        bb = TorchvisionVideoBackbone("mc3_18", weights=str(path))
        assert bb.weights_id() == file_sha256(path) and not bb.is_random
        assert torch.equal(bb.embed(clip), ref), path.name
    other = TorchvisionVideoBackbone("mc3_18", seed=4).embed(clip)
    assert not torch.allclose(other, ref)


def test_wrong_files_name_the_keys(tmp_path):
    import torchvision.models.video as tv

    foreign = tmp_path / "r3d.pt"
    torch.save(tv.r3d_18().state_dict(), foreign)  # another architecture
    with pytest.raises(VideoWeightsError, match=r"weights do not fit mc3_18.*(missing|shape)") as e:
        TorchvisionVideoBackbone("mc3_18", weights=str(foreign)).build()
    assert "layer" in str(e.value) and str(foreign) in str(e.value)

    state = TorchvisionVideoBackbone("mc3_18").network.state_dict()
    state["stem.0.weight"] = torch.zeros(3, 3, 3, 3, 3)
    state["extra.bias"] = torch.zeros(2)
    del state["layer1.0.conv1.0.weight"]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(VideoWeightsError) as e:
        TorchvisionVideoBackbone("mc3_18", weights=str(bad)).build()
    msg = str(e.value)
    assert "missing keys ['layer1.0.conv1.0.weight']" in msg
    assert "unexpected keys ['extra.bias']" in msg and "stem.0.weight: file (3, 3, 3, 3, 3)" in msg

    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not weights at all")
    with pytest.raises(VideoWeightsError, match="cannot read"):
        TorchvisionVideoBackbone("mc3_18", weights=str(garbage)).build()
    with pytest.raises(VideoWeightsError, match="KINETICS400_V1"):
        TorchvisionVideoBackbone("mc3_18", weights=str(tmp_path / "absent.pt"))
    with pytest.raises(ValueError, match="at least 14 frames"):
        TorchvisionVideoBackbone("s3d", clip_length=8)
    with pytest.raises(ValueError, match="unknown torchvision video arch"):
        TorchvisionVideoBackbone("resnet50")


def test_torchvision_weights_name_is_resolved_without_downloading():
    bb = TorchvisionVideoBackbone("r3d_18", weights="KINETICS400_V1")
    assert bb.weights_id() == "torchvision:R3D_18_Weights.KINETICS400_V1:r3d_18-b3b3357e.pth"
    assert not bb.is_random and bb.identity()["weights_id"] == bb.weights_id()


def test_identity_differs_between_backbones_and_seeds():
    a = TorchvisionVideoBackbone("r3d_18").identity()
    assert same_backbone(a, TorchvisionVideoBackbone("r3d_18").identity())
    assert not same_backbone(a, TorchvisionVideoBackbone("mc3_18").identity())
    assert not same_backbone(a, TorchvisionVideoBackbone("r3d_18", seed=1).identity())
    assert not same_backbone(a, TorchvisionVideoBackbone("r3d_18", clip_length=8).identity())


@pytest.mark.slow
def test_train_runs_with_r3d_18_through_the_feature_cache(compose_cfg, tmp_path):
    """python train.py backbone=r3d_18 backbone.weights=random features=visual on the tiny demo
    (slow: 60 r3d_18 clips, ~75 s on 2 CPU cores)."""
    from gifemo.training import run_train

    cfg = compose_cfg(tmp_path, ["backbone=r3d_18", "backbone.weights=random", "features=visual"])
    assert "width" not in cfg.backbone
    metrics, objects = run_train(cfg)
    assert objects["model"].layout.visual_dim == 512 and objects["model"].layout.tag_dim == 0
    ckpt = torch.load(objects["checkpoint_path"], weights_only=True)
    ident = ckpt["backbone"]["identity"]
    assert ident["name"] == "r3d_18" and ident["weights_id"] == "random:seed=0"
    assert ident["clip_spec"]["crop"] == 112 and ident["output_dim"] == 512
    assert 0.0 <= metrics["test/pr_auc"] <= 1.0
