"""C3D backbone: architecture, parameter count, weight formats and their errors."""
import collections

import numpy as np
import pytest
import torch
from torch import nn

from gifemo.models.c3d import (
    C3D,
    C3DWeightsError,
    WeightsInfo,
    build_backbone,
    count_parameters,
    file_sha256,
    load_c3d_weights,
    preprocess,
    save_c3d_safetensors,
    weights_info,
)

NARROW = 0.125  # channels 8..64, fc6 512: same architecture, ~1/60 of the compute


def _conv_params(cin, cout):
    return cin * cout * 27 + cout


def test_parameter_count_to_fc6_is_61M():
    # Hand count from the paper's layer list (3x3x3 kernels, biases), independent of the module.
    chans = [3, 64, 128, 256, 256, 512, 512, 512, 512]
    expected = sum(_conv_params(a, b) for a, b in zip(chans[:-1], chans[1:]))
    expected += 8192 * 4096 + 4096
    model = C3D(width=1.0)
    assert count_parameters(model) == expected
    assert 61.0e6 < expected < 61.5e6


def _reference_c3d(width):
    """The paper's layer list written out as an nn.Sequential (an independent implementation)."""
    c = lambda n: max(1, round(n * width))
    layers, names = [], []
    spec = [("conv1", 3, 64, (1, 2, 2), 0), ("conv2", 64, 128, (2, 2, 2), 0),
            ("conv3a", 128, 256, None, 0), ("conv3b", 256, 256, (2, 2, 2), 0),
            ("conv4a", 256, 512, None, 0), ("conv4b", 512, 512, (2, 2, 2), 0),
            ("conv5a", 512, 512, None, 0), ("conv5b", 512, 512, (2, 2, 2), (0, 1, 1))]
    od = collections.OrderedDict()
    for name, cin, cout, pool, pad in spec:
        od[name] = nn.Conv3d(c(cin) if cin != 3 else 3, c(cout), 3, padding=1)
        od[name + "_relu"] = nn.ReLU()
        if pool:
            od[name + "_pool"] = nn.MaxPool3d(pool, pool, padding=pad)
    od["flatten"] = nn.Flatten()
    od["fc6"] = nn.Linear(c(512) * 16, c(4096))
    od["fc6_relu"] = nn.ReLU()
    return nn.Sequential(od)


def test_forward_matches_reference_sequential_and_shapes():
    model, _ = build_backbone("random", width=NARROW, seed=3)
    ref = _reference_c3d(NARROW)
    ref.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 16, 112, 112)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, model.output_dim) == (2, 512)
        torch.testing.assert_close(y, ref(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"got \(2, 3, 8, 112, 112\)"):
        model(torch.zeros(2, 3, 8, 112, 112))


def test_backbone_is_frozen():
    model, info = build_backbone("random", width=NARROW)
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training
    assert info == WeightsInfo("random", "random", "caffe-bgr-mean", NARROW, 0)
    assert info.weights_id == f"random:seed=0:width={NARROW:g}"


def test_random_init_is_seeded():
    a, _ = build_backbone("random", width=NARROW, seed=1)
    b, _ = build_backbone("random", width=NARROW, seed=1)
    c, _ = build_backbone("random", width=NARROW, seed=2)
    torch.testing.assert_close(a.conv2.weight, b.conv2.weight, rtol=0, atol=0)
    assert not torch.equal(a.conv2.weight, c.conv2.weight)


def test_caffe_preprocess_is_bgr_minus_mean():
    rgb = torch.rand(1, 3, 2, 4, 4) * 255
    out = preprocess(rgb, "caffe-bgr-mean").numpy()
    x = rgb.numpy()
    expected = np.stack([x[:, 2] - 104.0, x[:, 1] - 117.0, x[:, 0] - 128.0], axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_array_equal(preprocess(rgb, "rgb-0-255").numpy(), x)
    with pytest.raises(ValueError, match="unknown input convention 'yuv'"):
        preprocess(rgb, "yuv")


def _format_a_state_dict(model):
    """What the common Sports-1M conversion holds: fc6 and below plus fc7/fc8."""
    sd = collections.OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    g = torch.Generator().manual_seed(9)
    sd["fc7.weight"] = torch.randn(17, model.output_dim, generator=g)
    sd["fc7.bias"] = torch.randn(17, generator=g)
    sd["fc8.weight"] = torch.randn(5, 17, generator=g)
    sd["fc8.bias"] = torch.randn(5, generator=g)
    return sd


@pytest.mark.parametrize("legacy", [False, True])
def test_format_a_loads_to_identical_outputs(tmp_path, legacy):
    seeded, _ = build_backbone("random", width=NARROW, seed=7)
    path = tmp_path / "c3d.pickle"
    torch.save(_format_a_state_dict(seeded), path, _use_new_zipfile_serialization=not legacy)
    model, info = build_backbone(path, width=NARROW)
    assert info.sha256 == file_sha256(path) and len(info.sha256) == 64
    assert info.convention == "caffe-bgr-mean"
    assert not model.training and all(not p.requires_grad for p in model.parameters())
    clips = torch.rand(2, 3, 16, 112, 112) * 255
    with torch.no_grad():
        torch.testing.assert_close(model.embed(clips), seeded.embed(clips), rtol=0, atol=0)
    loaded = load_c3d_weights(path)
    assert not any(k.startswith(("fc7", "fc8")) for k in loaded.state_dict)


def test_safetensors_roundtrip_keeps_convention(tmp_path):
    seeded, _ = build_backbone("random", width=NARROW, seed=5, convention="rgb-0-255")
    path = save_c3d_safetensors(seeded, tmp_path / "c3d.safetensors")
    model, info = build_backbone(path, width=NARROW)
    assert info.convention == "rgb-0-255" and model.convention == "rgb-0-255"
    clips = torch.rand(1, 3, 16, 112, 112) * 255
    with torch.no_grad():
        torch.testing.assert_close(model.embed(clips), seeded.embed(clips), rtol=0, atol=0)
    with pytest.raises(C3DWeightsError, match=r"width=0.125\) but width=0.25"):
        build_backbone(path, width=0.25)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(C3DWeightsError, match="nope.pickle: weights file not found"):
        build_backbone(tmp_path / "nope.pickle", width=NARROW)


def test_foreign_file_is_rejected(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a network")
    with pytest.raises(C3DWeightsError, match="notes.txt: not a C3D weights file"):
        build_backbone(path, width=NARROW)


@pytest.mark.parametrize("kind", ["torch", "safetensors"])
def test_truncated_file_gives_clear_error(tmp_path, kind):
    seeded, _ = build_backbone("random", width=NARROW)
    path = tmp_path / f"w.{kind}"
    if kind == "torch":
        torch.save(seeded.state_dict(), path)
    else:
        save_c3d_safetensors(seeded, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(C3DWeightsError, match=str(path.name)) as err:
        build_backbone(path, width=NARROW)
    assert "cannot read" in str(err.value) or "truncated" in str(err.value)


def test_missing_and_mismatched_keys_are_named(tmp_path):
    seeded, _ = build_backbone("random", width=NARROW)
    sd = dict(seeded.state_dict())
    del sd["conv3b.weight"]
    sd["conv1.bias"] = torch.zeros(9)
    sd["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pickle"
    torch.save(sd, path)
    with pytest.raises(C3DWeightsError) as err:
        build_backbone(path, width=NARROW)
    msg = str(err.value)
    assert "missing keys ['conv3b.weight']" in msg
    assert "unexpected keys ['extra.weight']" in msg
    assert "conv1.bias: file (9,) vs model (8,)" in msg


def test_full_width_weights_into_narrow_model_name_shapes(tmp_path):
    path = tmp_path / "full.pickle"
    torch.save(C3D(width=1.0).state_dict(), path)
    with pytest.raises(C3DWeightsError, match=r"conv1.weight: file \(64, 3, 3, 3, 3\) vs model \(8, 3, 3, 3, 3\)"):
        build_backbone(path, width=NARROW)


class _Arbitrary:
    """Unpickling this would run arbitrary code paths; weights_only must refuse it."""


def test_non_state_dict_and_code_objects_are_refused(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(C3DWeightsError, match="expected a state dict"):
        load_c3d_weights(path)
    evil = tmp_path / "evil.pt"
    torch.save({"conv1.weight": _Arbitrary()}, evil)  # arbitrary class: refused by weights_only
    with pytest.raises(C3DWeightsError, match="evil.pt: cannot read torch.save file"):
        load_c3d_weights(evil)


def test_weights_info_without_loading_matches_build(tmp_path):
    seeded, _ = build_backbone("random", width=NARROW, seed=4, convention="rgb-0-255")
    st = save_c3d_safetensors(seeded, tmp_path / "w.safetensors")
    pt = tmp_path / "w.pickle"
    torch.save(_format_a_state_dict(seeded), pt)
    for path in (st, pt):
        assert weights_info(path, width=NARROW) == build_backbone(path, width=NARROW)[1]
    assert weights_info("random", NARROW, 4) == build_backbone("random", NARROW, 4)[1]
    assert weights_info(st, NARROW).convention == "rgb-0-255"
    assert weights_info(pt, NARROW).convention == "caffe-bgr-mean"
