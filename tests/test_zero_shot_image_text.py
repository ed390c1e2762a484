"""Image-text zero-shot in rank_zero_shot / rank.py --zero-shot --clip-weights: a tiny open_clip
model with random weights (no download). The scores must be the cosines between the cached frame
features and the emotion's prompt vector from the backbone's own text tower, combined with the
tag scores as the mean of the standardised matrices when the candidates have tags."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

open_clip = pytest.importorskip("open_clip")

from gifemo.features import ensure_visual_features  # noqa: E402
from gifemo.models.open_clip_frames import OpenClipFrames  # noqa: E402
from gifemo.models.zero_shot import prompt_vector, standardize  # noqa: E402
from gifemo.rank import RankError, discover_candidates, rank_zero_shot  # noqa: E402

TINY = "gifemo-tiny-ViT"  # tests/data/open_clip/gifemo-tiny-ViT.json
RUN = {"accelerator": "cpu", "progress": False}


@pytest.fixture(scope="module", autouse=True)
def tiny_config():
    open_clip.add_model_config(Path(__file__).parent / "data" / "open_clip")


def _image_scores(source, bb, cache, emotion):
    table = ensure_visual_features(discover_candidates(source), cache, bb,
                                   {"max_clips_per_gif": None}, run=RUN)
    return table.visual.astype(np.float64) @ prompt_vector(bb, emotion), table


def test_untagged_folder_ranks_from_pixels_and_skips_a_broken_gif(demo_dir, tmp_path):
    folder = tmp_path / "gifs"
    folder.mkdir()
    for p in sorted((demo_dir / "gifs").glob("*.gif"))[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "zz_broken.gif").write_bytes(b"GIF89a" + b"\x00" * 20)
    bb = OpenClipFrames(TINY, seed=1)
    with pytest.raises(RankError, match="no tags"):
        rank_zero_shot(folder, "nostalgia")                     # tags only: nothing to read
    out = tmp_path / "out" / "ranked.csv"
    res = rank_zero_shot(folder, "nostalgia", image_text=bb, cache_dir=tmp_path / "cache",
                         out_csv=out, run=RUN)
    expected, table = _image_scores(folder, bb, tmp_path / "cache", "nostalgia")
    assert res.n_candidates == 4 and len(res.ids) == 3 and len(res.bad) == 1
    assert "zz_broken" in str(res.bad[0][0])
    assert table.n_computed == 0                                # the ranking filled the cache
    np.testing.assert_allclose(res.scores[:, 0], expected, rtol=1e-5, atol=1e-6)
    assert out.exists() and (out.parent / "bad_files.csv").exists()


@pytest.mark.slow
def test_tagged_candidates_combine_tag_and_image_scores(demo_dir, tmp_path, sentence_encoder):
    bb = OpenClipFrames(TINY, seed=2)
    cache = tmp_path / "cache"
    emotions = ["happiness", "awe"]
    both = rank_zero_shot(demo_dir, emotions, image_text=bb, cache_dir=cache, run=RUN)
    tags = rank_zero_shot(demo_dir, emotions, cache_dir=cache)
    image = np.stack([_image_scores(demo_dir, bb, cache, e)[0] for e in emotions], axis=1)
    assert both.ids == tags.ids
    np.testing.assert_allclose(both.scores, (standardize(image) + standardize(tags.scores)) / 2,
                               rtol=1e-4, atol=1e-5)
    assert not np.allclose(both.scores, standardize(tags.scores), atol=1e-3)


def test_cli_refuses_clip_weights_without_zero_shot():
    from test_rank import rank_cli as cli

    with pytest.raises(SystemExit):
        cli.parse_args(["ckpt.pt", "folder", "--clip-weights", "random"])
    a = cli.parse_args(["--zero-shot", "awe", "folder", "--clip-weights", "random"])
    assert a.source == "folder" and a.clip_weights == "random" and a.checkpoint is None
