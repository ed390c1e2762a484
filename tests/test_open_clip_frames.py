"""open_clip frame encoder on a tiny open_clip architecture with random weights (no download):
embedding size and norm against open_clip's own transform and encoders, frame sampling and
pooling through the feature cache, local file round trip, wrong files, the text tower."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

open_clip = pytest.importorskip("open_clip", reason="the clip extra: pip install 'gifemo[clip]'")

from gifemo.data.decode import decode  # noqa: E402
from gifemo.features.visual_features import ensure_visual_features  # noqa: E402
from gifemo.file_hash import file_sha256  # noqa: E402
from gifemo.models.backbone import same_backbone  # noqa: E402
from gifemo.models.open_clip_frames import OpenClipFrames  # noqa: E402
from gifemo.models.weights_file import WeightsFileError  # noqa: E402

TINY = "gifemo-tiny-ViT"  # tests/data/open_clip/gifemo-tiny-ViT.json: 32x32 images, 32-d embeddings
RUN = {"accelerator": "cpu", "progress": False}


@pytest.fixture(scope="module", autouse=True)
def tiny_config():
    open_clip.add_model_config(Path(__file__).parent / "data" / "open_clip")
    assert TINY in open_clip.list_models()


def _frames(n, seed=0, size=32):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 1, size, size), generator=g).float()


def test_frame_embeddings_are_open_clips_own_normalised_image_embeddings():
    """Square S x S frames: open_clip's own eval transform (PIL -> resize -> tensor -> normalise)
    and encode_image, L2-normalised, give the same rows; every row has norm 1."""
    from PIL import Image

    bb = OpenClipFrames(TINY, seed=2)
    assert bb.output_dim == 32 and bb.max_clips == 8
    assert (bb.clip_spec.length, bb.clip_spec.stride, bb.clip_spec.resize_hw, bb.clip_spec.crop) == \
        (1, 1, (32, 32), 32)
    frames = _frames(5)
    got = bb.embed(frames)
    assert got.shape == (5, 32) and got.dtype == torch.float32
    np.testing.assert_allclose(got.norm(dim=1).numpy(), 1.0, rtol=1e-5)

    torch.manual_seed(2)
    model, _, preprocess = open_clip.create_model_and_transforms(TINY, pretrained=None)
    model.eval()
    pil = [Image.fromarray(f[:, 0].permute(1, 2, 0).numpy().astype(np.uint8)) for f in frames]
    with torch.no_grad():
        ref = model.encode_image(torch.stack([preprocess(p) for p in pil]))
    ref = ref / ref.norm(dim=1, keepdim=True)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    net = bb.network
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def _evenly_spaced(n, k):
    """Independent statement of the rule: the centre frame of each of k equal segments."""
    if n <= k:
        return list(range(n))
    return [int(np.floor((2 * i + 1) * n / (2 * k))) for i in range(k)]


def test_gif_feature_is_l2_mean_of_up_to_8_evenly_spaced_frames(demo_dir, tmp_path):
    """Through the feature cache: a GIF's feature = L2(mean of the L2-normalised embeddings of
    its 8 evenly spaced frames), resized by hand; a data cap of 2 frames is another cache entry."""
    bb = OpenClipFrames(TINY, seed=1)
    paths = sorted((demo_dir / "gifs").glob("*.gif"))[:3]
    folder = tmp_path / "gifs"
    folder.mkdir()
    for p in paths:
        (folder / p.name).write_bytes(p.read_bytes())
    from gifemo.rank import discover_candidates

    dataset = discover_candidates(folder)
    table = ensure_visual_features(dataset, tmp_path / "cache", bb, {"max_clips_per_gif": None},
                                   run=RUN)
    assert table.visual.shape == (3, 32)
    for row, path in enumerate(dataset.paths):
        rgb = decode(str(path)).rgb
        keep = _evenly_spaced(len(rgb), 8)
        x = torch.from_numpy(rgb[keep]).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
        e = bb.embed(x.round().clamp(0, 255).unsqueeze(2)).double().numpy()
        f = e.mean(0) / np.linalg.norm(e.mean(0))
        np.testing.assert_allclose(table.visual[row], f, atol=2e-3)
        assert len(keep) == min(8, len(rgb))
    np.testing.assert_allclose(np.linalg.norm(table.visual, axis=1), 1.0, rtol=1e-5)
    two = ensure_visual_features(dataset, tmp_path / "cache", bb, {"max_clips_per_gif": 2}, run=RUN)
    assert two.cache_dir != table.cache_dir and not np.allclose(two.visual, table.visual)
    fewer = ensure_visual_features(dataset, tmp_path / "cache", OpenClipFrames(TINY, seed=1, frames=2),
                                   {"max_clips_per_gif": None}, run=RUN)
    assert fewer.cache_dir not in (two.cache_dir, table.cache_dir)
    np.testing.assert_allclose(fewer.visual, two.visual, atol=1e-6)  # the same 2 frames


def test_local_file_round_trips_exactly_and_ddp_prefixes_load(tmp_path):
    from safetensors.torch import save_file

    src = OpenClipFrames(TINY, seed=3)
    state = src.network.clip.state_dict()
    pt, st, ddp = tmp_path / "w.pt", tmp_path / "w.safetensors", tmp_path / "ddp.pt"
    torch.save(state, pt)
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    torch.save({f"module.{k}": v for k, v in state.items()}, ddp)
    frames = _frames(3, seed=4)
    texts = ["a happy dog", "an angry man"]
    for path in (pt, st, ddp):
        bb = OpenClipFrames(TINY, weights=str(path))
        back = bb.network.clip.state_dict()
        assert back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in state)
        assert torch.equal(bb.embed(frames), src.embed(frames))
        assert np.array_equal(bb.encode_text(texts), src.encode_text(texts))
        assert bb.weights_id() == file_sha256(path) and not bb.is_random
    assert not torch.allclose(OpenClipFrames(TINY, seed=4).embed(frames), src.embed(frames))


def test_wrong_files_and_settings_are_named(tmp_path):
    state = OpenClipFrames(TINY).network.clip.state_dict()
    state["visual.conv1.weight"] = torch.zeros(64, 3, 4, 4)
    state["extra.bias"] = torch.zeros(2)
    del state["text_projection"]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(WeightsFileError) as e:
        OpenClipFrames(TINY, weights=str(bad)).build()
    msg = str(e.value)
    assert str(bad) in msg and f"do not fit open_clip {TINY}" in msg
    assert "missing keys ['text_projection']" in msg and "unexpected keys ['extra.bias']" in msg
    assert "visual.conv1.weight: file (64, 3, 4, 4) vs model (64, 3, 8, 8)" in msg

    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"no weights here")
    with pytest.raises(WeightsFileError, match="cannot read"):
        OpenClipFrames(TINY, weights=str(garbage)).build()
    with pytest.raises(WeightsFileError, match="laion2b_s34b_b79k"):
        OpenClipFrames("ViT-B-32", weights=str(tmp_path / "absent.pt"))
    with pytest.raises(ValueError, match="unknown open_clip model"):
        OpenClipFrames("no-such-model")
    with pytest.raises(ValueError, match="frames must be a positive"):
        OpenClipFrames(TINY, frames=0)


def test_text_tower_gives_normalised_embeddings_of_open_clips_tokenizer():
    bb = OpenClipFrames(TINY, seed=5)
    texts = ["a happy cat", "a sad cat", "a happy cat"]
    got = bb.encode_text(texts)
    assert got.shape == (3, 32) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    assert np.array_equal(got[0], got[2]) and not np.allclose(got[0], got[1])
    with torch.no_grad():
        ref = bb.network.clip.encode_text(open_clip.get_tokenizer(TINY)(texts)).double().numpy()
    np.testing.assert_allclose(got, ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-5)
    assert bb.encode_text([]).shape == (0, 32)
    with pytest.raises(TypeError, match="list of strings"):
        bb.encode_text("a happy cat")


def test_identity_names_model_frames_and_weights_without_building():
    a = OpenClipFrames(TINY)
    assert a.identity()["settings"]["frames"] == 8 and a.weights_id() == "random:seed=0"
    assert same_backbone(a.identity(), OpenClipFrames(TINY).identity())
    for other in (OpenClipFrames(TINY, frames=4), OpenClipFrames(TINY, seed=1),
                  OpenClipFrames("ViT-S-32")):
        assert not same_backbone(a.identity(), other.identity())
    tagged = OpenClipFrames("ViT-B-32", weights="laion2b_s34b_b79k")  # resolved, not downloaded
    assert tagged.weights_id() == "open_clip:ViT-B-32:laion2b_s34b_b79k" and not tagged.is_random
    assert tagged._network is None and tagged.output_dim == 512
    assert tagged.clip_spec.resize_hw == (224, 224)
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    node = OmegaConf.load("conf/backbone/open_clip.yaml")
    node.weights = "random"
    assert isinstance(instantiate(node), OpenClipFrames)


@pytest.mark.slow
def test_train_runs_with_open_clip_frames(compose_cfg, tmp_path):
    """train.py backbone=open_clip backbone.model=<tiny> backbone.weights=random on the tiny demo;
    its checkpoint names the backbone and refuses another frame count (slow: ~12 s)."""
    from gifemo.checkpoint import load_recognizer
    from gifemo.training import run_train

    cfg = compose_cfg(tmp_path, ["backbone=open_clip", f"backbone.model={TINY}",
                                 "backbone.weights=random", "features=visual"])
    metrics, objects = run_train(cfg)
    assert objects["model"].layout.visual_dim == 32
    model, ckpt = load_recognizer(objects["checkpoint_path"])
    ident = ckpt["backbone"]["identity"]
    assert ident["name"] == "open_clip" and ident["settings"]["model"] == TINY
    model.attach_backbone(OpenClipFrames(TINY))
    with pytest.raises(ValueError, match="differs"):
        model.attach_backbone(OpenClipFrames(TINY, frames=4))
    assert 0.0 <= metrics["test/pr_auc"] <= 1.0
