"""torchvision video backbones: frozen, headless, clip spec from the weights' metadata, weights
random / torchvision name / local file (exact round trip, clear errors), through train.py."""
from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gifemo.checkpoint import load_recognizer, save_checkpoint
from gifemo.features.cache import FeatureCache
from gifemo.features.visual_features import ClipConfig, DecodeConfig, feature_settings
from gifemo.file_hash import file_sha256
from gifemo.models.backbone import same_backbone
from gifemo.models.c3d import C3DBackbone
from gifemo.models.layout import FeatureLayout
from gifemo.models.linear_recognizer import LinearRecognizer
from gifemo.models.penalties import RidgePenalty
from gifemo.models.torchvision_video import ARCHS, TorchvisionVideoBackbone, VideoWeightsError
from gifemo.rank import BackboneMismatchError, rank_gifs

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


def _small_clip(backbone, seed=0):
    """A clip of the backbone's length; 56x56 for the ResNets (adaptive pooling takes any
    size: cheap), the spec's crop for the transformers and S3D (fixed-size layers)."""
    s = backbone.clip_spec
    side = 56 if backbone.name in LIGHT else s.crop
    g = torch.Generator().manual_seed(seed)
    return torch.rand((1, 3, s.length, side, side), generator=g) * 255


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


@pytest.mark.parametrize("arch", [*LIGHT[:2], pytest.param("r2plus1d_18", marks=pytest.mark.slow)])
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
    clip = _small_clip(src)
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


def _round_trip_and_wrong_file(arch, tmp_path):
    """A state dict saved from a random instance loads back exactly (every tensor equal, same
    features); another arch's file fails naming the keys."""
    src = TorchvisionVideoBackbone(arch, seed=5)
    path = tmp_path / f"{arch}.pt"
    torch.save(src.network.state_dict(), path)
    back = TorchvisionVideoBackbone(arch, weights=str(path))
    a, b = src.network.state_dict(), back.network.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    clip = _small_clip(src)
    assert torch.equal(back.embed(clip), src.embed(clip))
    assert back.weights_id() == file_sha256(path) and not same_backbone(back.identity(), src.identity())

    other = "swin3d_t" if arch == "mvit_v2_s" else "mvit_v2_s" if arch in HEAVY else \
        {"r3d_18": "r2plus1d_18", "mc3_18": "r3d_18", "r2plus1d_18": "mc3_18"}[arch]
    foreign = tmp_path / f"{other}.pt"
    torch.save(TorchvisionVideoBackbone(other).network.state_dict(), foreign)
    with pytest.raises(VideoWeightsError, match=rf"weights do not fit {arch}: "
                                                r"(missing keys|unexpected keys|shape mismatches)") as e:
        TorchvisionVideoBackbone(arch, weights=str(foreign)).build()
    assert str(foreign) in str(e.value)


@pytest.mark.parametrize("arch", ["r3d_18", pytest.param("r2plus1d_18", marks=pytest.mark.slow)])  # mc3_18: above
def test_every_light_arch_round_trips_a_local_file_and_names_a_wrong_ones_keys(arch, tmp_path):
    _round_trip_and_wrong_file(arch, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("arch", HEAVY)
def test_every_heavy_arch_round_trips_a_local_file_and_names_a_wrong_ones_keys(arch, tmp_path):
    _round_trip_and_wrong_file(arch, tmp_path)


def _identities():
    out = {"c3d": C3DBackbone("random").identity()}
    out.update({arch: TorchvisionVideoBackbone(arch).identity() for arch in ARCHS})
    return out


def test_each_backbone_has_its_own_feature_cache_folder(tmp_path):
    """The cache key holds the backbone identity: seven backbones, seven folders (and the
    same backbone twice, one)."""
    clips, decode = ClipConfig(max_clips_per_gif=1), DecodeConfig()
    dirs = {name: FeatureCache(tmp_path, feature_settings(ident, clips, decode)).dir
            for name, ident in _identities().items()}
    assert len(set(dirs.values())) == len(dirs)
    again = FeatureCache(tmp_path, feature_settings(TorchvisionVideoBackbone("r3d_18").identity(),
                                                    clips, decode)).dir
    assert again == dirs["r3d_18"]


def _r3d_checkpoint(path):
    bb = TorchvisionVideoBackbone("r3d_18")
    m = LinearRecognizer(RidgePenalty(1.0), layout=FeatureLayout("visual", 512, 0))
    m.backbone_info = bb.identity()
    config = {"_target_": "gifemo.models.torchvision_video.TorchvisionVideoBackbone",
              "arch": "r3d_18", "weights": "random", "seed": 0, "clip_length": None}
    return save_checkpoint(m, path, backbone_config=config)


def test_a_checkpoint_refuses_another_backbones_features(tmp_path, demo_dir):
    """An r3d_18 checkpoint: attaching mc3_18 (same 512 dims) or a C3D fails naming both;
    ranking with weights saved from mc3_18 fails naming both, before computing anything."""
    ckpt = _r3d_checkpoint(tmp_path / "r3d.pt")
    model, _ = load_recognizer(ckpt)
    with pytest.raises(ValueError, match=r"mc3_18 \(weights random:seed=0, dim 512\) differs .* "
                                         r"r3d_18 \(weights random:seed=0, dim 512\)"):
        model.attach_backbone(TorchvisionVideoBackbone("mc3_18"))
    with pytest.raises(ValueError, match="r3d_18 .*seed=1"):
        model.attach_backbone(TorchvisionVideoBackbone("r3d_18", seed=1))
    model.attach_backbone(TorchvisionVideoBackbone("r3d_18"))  # its own backbone is accepted

    mc3_file = tmp_path / "mc3.pt"
    torch.save(TorchvisionVideoBackbone("mc3_18").network.state_dict(), mc3_file)
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "x.gif").write_bytes(sorted((demo_dir / "gifs").glob("*.gif"))[0].read_bytes())
    with pytest.raises(BackboneMismatchError) as e:
        rank_gifs(ckpt, folder, weights=str(mc3_file), run={"accelerator": "cpu", "progress": False})
    msg = str(e.value)
    assert file_sha256(mc3_file) in msg and "r3d_18 (weights random:seed=0" in msg


# s3d (128 frames) and swin3d_t (32) at their full length take 20-30 s a clip on 2 cores:
# the slow tier runs them at 16 frames; scripts/backbone_table.py runs the configured lengths.
TRAIN_OVERRIDES = {"s3d": ["backbone.clip_length=16"], "swin3d_t": ["backbone.clip_length=16"]}


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(ARCHS))
def test_train_runs_each_backbone_through_its_own_cache(arch, compose_cfg, session_root, tmp_path):
    """python train.py backbone=<arch> backbone.weights=random features=visual on 8 demo GIFs
    (one clip each): features of the backbone's size, a cache folder of its own, a checkpoint
    naming it that refuses another backbone (slow: 10 s to 2 min per arch on 2 CPU cores)."""
    from gifemo.training import run_train

    cfg = compose_cfg(tmp_path, [f"backbone={arch}", "backbone.weights=random", "features=visual",
                                 "data.n_gifs=8", f"data.manifest={session_root / 'data' / 'demo8'}",
                                 ] + TRAIN_OVERRIDES.get(arch, []))
    assert "width" not in cfg.backbone
    metrics, objects = run_train(cfg)
    dim = ARCHS[arch].output_dim
    assert objects["model"].layout.visual_dim == dim and objects["model"].layout.tag_dim == 0
    model, ckpt = load_recognizer(objects["checkpoint_path"])
    ident = ckpt["backbone"]["identity"]
    assert ident["name"] == arch and ident["weights_id"] == "random:seed=0" and ident["output_dim"] == dim
    import json
    folders = [json.loads(p.read_text())["settings"]["backbone"]["name"]
               for p in (session_root / "cache").glob("*/settings.json")]
    assert folders.count(arch) == 1  # its own folder, beside the other backbones'
    with pytest.raises(ValueError, match=rf"{arch} \(weights random:seed=1.* differs from the one "
                                         rf"the recognizer was trained on, {arch} \(weights random:seed=0"):
        model.attach_backbone(TorchvisionVideoBackbone(arch, seed=1))
