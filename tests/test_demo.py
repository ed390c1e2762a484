"""Tests of the synthetic demo dataset (gifemo.data.demo), its summary and its script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence
from scipy.stats import spearmanr

from gifemo.data import demo
from gifemo.data.ratings_cache import CACHE_DIR
from gifemo.data.emotions import EMOTIONS, GENERIC_TAGS, POSITIVE_GROUP, TABLE1_TAGS
from gifemo.data.manifest import load_dataset
from gifemo.data.summary import (GifTimingError, format_label_balance, gif_timing,
                                 summarize_dataset, text_histogram)

N = 36
REPO = Path(__file__).resolve().parents[1]
POS = np.array([e in POSITIVE_GROUP for e in EMOTIONS])


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    path = demo.generate_demo(root / "a", n_gifs=N, seed=3, workers=1, progress=False)
    return path, demo.read_truth(path), load_dataset(path)


def _files(folder: Path) -> dict[str, bytes]:
    """The generated files (the derived ratings cache, written by later loads, left out)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and CACHE_DIR not in p.parts}


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_bytes_any_worker_count(made, tmp_path):
    path, _, _ = made
    again = demo.generate_demo(tmp_path / "b", n_gifs=N, seed=3, workers=2, progress=False)
    a, b = _files(path), _files(again)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []


def test_different_seed_differs(made, tmp_path):
    path, _, _ = made
    other = demo.generate_demo(tmp_path / "c", n_gifs=N, seed=4, workers=1, progress=False)
    a, b = _files(path), _files(other)
    for name in ("manifest.csv", "votes.csv", "demo_truth.json"):
        assert a[name] != b[name]
    gifs = [k for k in a if k.startswith("gifs/")]
    assert sum(a[k] != b.get(k) for k in gifs) >= 0.9 * len(gifs)


# --------------------------------------------------------------------------- files
def test_layout_and_manifest(made):
    path, truth, ds = made
    assert (path / "manifest.csv").is_file() and (path / "votes.csv").is_file()
    assert ds.ids == truth["ids"] and len(ds) == N
    assert [p.relative_to(path).as_posix() for p in ds.paths] == truth["paths"]
    assert set(ds.flags) == {"cartoon", "multi_scene"}
    assert ds.flags["cartoon"].tolist() == truth["cartoon"]
    assert ds.flags["multi_scene"].tolist() == truth["multi_scene"]


def test_gifs_have_intended_frames_delays_sizes_and_loop(made):
    path, truth, _ = made
    for rel, nf, delays, (w, h), loop in zip(truth["paths"], truth["n_frames"], truth["delays_ms"],
                                             truth["size_wh"], truth["loop"]):
        with Image.open(path / rel) as im:
            assert im.n_frames == nf, rel
            assert im.size == (w, h), rel
            assert im.info.get("loop") == loop, rel
        assert gif_timing(path / rel) == (nf, delays), rel
        assert 80 <= w <= 320 and 80 <= h <= 320


def test_opaque_gifs_decode_to_the_rendered_pictures(made):
    """Pillow's decoding of full/restore/delta GIFs equals palette[render_frames(spec)]."""
    path, truth, _ = made
    specs = demo.sample_gif_specs(*_latents_and_ids(truth))
    checked = 0
    for spec in specs:
        if spec.encoding == "sticker" or spec.n_frames > 60:
            continue
        pal = np.array(spec.palette, dtype=np.uint8).reshape(256, 3)
        expected = [pal[f] for f in demo.render_frames(spec)]
        with Image.open(path / spec.path) as im:
            got = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
        assert len(got) == len(expected)
        for t, (g, e) in enumerate(zip(got, expected)):
            np.testing.assert_array_equal(g, e, err_msg=f"{spec.path} frame {t}")
        checked += 1
    assert checked >= 5


def _latents_and_ids(truth):
    """Rebuild the spec stream exactly as generate_demo did (same SeedSequence children)."""
    ss = np.random.SeedSequence([truth["params"]["seed"], demo.GENERATOR_VERSION])
    rngs = [np.random.default_rng(s) for s in ss.spawn(4)]
    lat = demo.sample_latents(len(truth["ids"]), rngs[0])
    return lat, truth["ids"], rngs[3]


def test_decode_module_reads_every_gif(made):
    """Every GIF decodes with gifemo.data.decode (default backend) to the intended frames."""
    from gifemo.data.decode import decode

    path, truth, _ = made
    for rel, nf, delays, (w, h), loop in zip(truth["paths"], truth["n_frames"], truth["delays_ms"],
                                             truth["size_wh"], truth["loop"]):
        fr = decode(path / rel)
        assert fr.rgb.shape == (nf, h, w, 3), rel
        assert fr.delays_ms.tolist() == delays, rel
        assert fr.loop == loop, rel


def test_variety_of_files():
    """Over many specs: Fig. 9-like frame counts, varied delays and encodings (no rendering)."""
    rng = np.random.default_rng(0)
    n = 3000
    lat = demo.sample_latents(n, rng)
    specs = demo.sample_gif_specs(lat, [f"g{i}" for i in range(n)], rng)
    frames = np.array([s.n_frames for s in specs])
    assert frames.min() == 2 and 250 <= frames.max() <= 350
    assert 0.55 <= np.mean((frames >= 10) & (frames <= 60)) <= 0.9
    delays = np.concatenate([s.delays_ms for s in specs])
    assert np.all(delays % 10 == 0) and np.any(delays == 0) and np.any(delays == 10)
    per_gif = [len(set(s.delays_ms)) > 1 for s in specs]
    assert 0.15 <= np.mean(per_gif) <= 0.5
    enc = {e: np.mean([s.encoding == e for s in specs]) for e in ("full", "delta", "sticker", "restore")}
    assert all(r > 0.05 for r in enc.values())
    assert {s.loop for s in specs} >= {0, None, 1}


# --------------------------------------------------------------------------- labels
def test_votes_reference_known_ids_and_leave_gaps(made):
    path, truth, ds = made
    known = set(truth["ids"])
    with open(path / "votes.csv", encoding="utf-8") as fh:
        header = fh.readline().strip()
        rows = [line.rstrip("\n").split(",") for line in fh]
    assert header == "emotion,left,right,choice"
    assert all(r[1] in known and r[2] in known and r[1] != r[2] for r in rows)
    assert {r[0] for r in rows} == set(EMOTIONS)
    choices = np.array([r[3] for r in rows])
    assert set(choices) == {"left", "right", "neither"}
    assert 0.03 < np.mean(choices == "neither") < 0.25
    # Not every GIF is compared for every emotion: masks matter.
    assert 0.5 < ds.mask.mean() < 0.97
    assert (~ds.mask).any(axis=0).sum() >= 12


def test_label_balance_and_labels_follow_truth(made):
    _, truth, ds = made
    rate = ds.positive[ds.mask].mean()
    assert 0.12 <= rate <= 0.40, rate
    scores = np.asarray(truth["scores"])
    rho = spearmanr(ds.y[ds.mask], scores[ds.mask])[0]
    assert rho > 0.6, rho


def test_vote_outcomes_follow_the_bradley_terry_model():
    """Empirical win rates of left over right match sigmoid(t_left - t_right)."""
    rng = np.random.default_rng(1)
    t = np.array([[0.0] * 17, [1.0] * 17, [3.0] * 17])
    votes = demo.sample_votes(np.tile(t, (100, 1)), [f"g{i}" for i in range(300)], rng,
                              votes_per_gif=60, coverage=(1.0, 1.0))
    level = {f"g{i}": t[i % 3, 0] for i in range(300)}
    by_gap: dict[float, list[bool]] = {}
    for _, a, b, c in votes:
        if c != "neither":
            by_gap.setdefault(level[a] - level[b], []).append(c == "left")
    for gap, wins in by_gap.items():
        expect = 1 / (1 + np.exp(-gap))
        se = np.sqrt(expect * (1 - expect) / len(wins))
        assert abs(np.mean(wins) - expect) < 5 * se + 1e-9, (gap, np.mean(wins), expect)


# --------------------------------------------------------------------------- structure
def test_two_groups_in_true_scores(made):
    """Within-group correlation of true scores is high, across groups negative (k = 2)."""
    lat = demo.sample_latents(4000, np.random.default_rng(0))
    c = np.corrcoef(lat.scores.T)
    off = ~np.eye(17, dtype=bool)
    same = (POS[:, None] == POS[None, :]) & off
    within, across = c[same].mean(), c[POS[:, None] != POS[None, :]].mean()
    assert within > 0.35 and across < -0.15, (within, across)
    # The generated dataset shows it too (fewer GIFs, looser bounds).
    cs = np.corrcoef(np.asarray(made[1]["scores"]).T)
    assert cs[same].mean() > cs[POS[:, None] != POS[None, :]].mean() + 0.3
    # 2-means on the score columns recovers the groups exactly.
    from sklearn.cluster import KMeans

    lab = KMeans(2, n_init=10, random_state=0).fit_predict(c)
    assert len(set(lab[POS])) == 1 and len(set(lab[~POS])) == 1 and lab[POS][0] != lab[~POS][0]


def test_flags_correlate_with_their_emotions():
    lat = demo.sample_latents(4000, np.random.default_rng(0))
    assert 0.18 < lat.cartoon.mean() < 0.26 and 0.31 < lat.multi_scene.mean() < 0.39
    j = EMOTIONS.index("amusement")
    assert lat.scores[lat.cartoon, j].mean() > lat.scores[~lat.cartoon, j].mean() + 0.3
    j = EMOTIONS.index("embarrassment")
    assert lat.scores[lat.multi_scene, j].mean() > lat.scores[~lat.multi_scene, j].mean() + 0.2


def test_pictures_carry_valence_and_arousal(made):
    """Warm colours follow valence, frame-to-frame change follows arousal (part of the signal)."""
    path, truth, _ = made
    warmth, motion = [], []
    for rel in truth["paths"]:
        with Image.open(path / rel) as im:
            fr = np.stack([np.asarray(f.convert("RGB"), dtype=np.float32)
                           for f, _ in zip(ImageSequence.Iterator(im), range(24))])
        warmth.append(np.mean(fr[..., 0] - fr[..., 2]))
        motion.append(np.mean(np.abs(np.diff(fr, axis=0))) if len(fr) > 1 else 0.0)
    assert spearmanr(warmth, truth["valence"])[0] > 0.4
    assert spearmanr(motion, truth["arousal"])[0] > 0.2


# --------------------------------------------------------------------------- tags
def test_tags_table1_generic_and_long_tail():
    from gifemo.data.tags import TagVocabulary, normalize_tag

    rng = np.random.default_rng(0)
    n = 1500
    lat = demo.sample_latents(n, rng)
    tags = [[normalize_tag(t) for t in ts] for ts in demo.sample_tags(lat, rng)]
    df: dict[str, int] = {}
    for ts in tags:
        for t in set(ts):
            df[t] = df.get(t, 0) + 1
    assert 0.2 < df["tv"] / n < 0.35 and 0.15 < df["movies"] / n < 0.3
    rare = sum(c < 0.005 * n for c in df.values())
    assert rare > 0.6 * len(df)                       # the 0.5 % threshold cuts a long tail
    vocab = TagVocabulary.build(tags)
    assert 80 <= len(vocab) <= 300
    # Positives of an emotion carry its Table 1 tags more than the rest do.
    for e in ("happiness", "sadness", "anger", "fear"):
        j = EMOTIONS.index(e)
        own = {t for t in TABLE1_TAGS[e] if t not in GENERIC_TAGS}
        has = np.array([bool(own & set(ts)) for ts in tags])
        top = lat.scores[:, j] > 1.0
        assert has[top].mean() > has[~top].mean() + 0.25, e
    lengths = np.array([len(ts) for ts in tags])
    assert 3 <= np.median(lengths) <= 12


# --------------------------------------------------------------------------- safety
def test_refuses_to_overwrite_other_folders(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(demo.DemoExistsError, match="not a demo"):
        demo.generate_demo(tmp_path, n_gifs=4, workers=1, progress=False)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    out = demo.generate_demo(tmp_path / "d", n_gifs=4, workers=1, progress=False)
    with pytest.raises(demo.DemoExistsError, match="overwrite=False"):
        demo.generate_demo(out, n_gifs=4, workers=1, progress=False, overwrite=False)
    assert demo.demo_is_current(out, 4, 0) and not demo.demo_is_current(out, 4, 1)
    (out / demo.read_truth(out)["paths"][0]).unlink()
    assert not demo.demo_is_current(out, 4, 0)
    with pytest.raises(ValueError, match="n_gifs"):
        demo.generate_demo(tmp_path / "e", n_gifs=1)


# --------------------------------------------------------------------------- summary
def test_gif_timing_errors(tmp_path, made):
    path, truth, _ = made
    (tmp_path / "x.gif").write_bytes(b"PNG not a gif")
    with pytest.raises(GifTimingError, match="x.gif: not a GIF"):
        gif_timing(tmp_path / "x.gif")
    data = (path / truth["paths"][0]).read_bytes()
    (tmp_path / "t.gif").write_bytes(data[:40])
    with pytest.raises(GifTimingError, match="t.gif: truncated"):
        gif_timing(tmp_path / "t.gif")
    with pytest.raises(GifTimingError, match="cannot read"):
        gif_timing(tmp_path / "missing.gif")


def test_gif_timing_counts_composed_frames_like_the_decoder(tmp_path):
    """Two images drawn into one frame (the first has no delay) count as one frame of the
    second image's delay, as decode() composes them; a plain per-image count would say 3."""
    from gifemo.data.decode import decode
    from gifgen import Img, gif_bytes

    path = tmp_path / "multi.gif"
    one = np.ones((1, 1), np.uint8)
    path.write_bytes(gif_bytes(8, 8, [Img(one, delay_cs=0), Img(one, left=1, delay_cs=7),
                                      Img(one * 0, top=1, delay_cs=9)], loop=0))
    frames = decode(path)
    assert gif_timing(path) == (len(frames.delays_ms), frames.delays_ms.tolist()) == (2, [70, 90])


def test_text_histogram_counts_everything():
    vals = [0, 1, 5, 9.99, 10, 20, 25, 99]
    lines = text_histogram(vals, [1, 10, 20], width=10).splitlines()
    counts = [int(line.split()[1]) for line in lines]
    # <1: {0}; [1, 10): {1, 5, 9.99}; [10, 20] (last bin closed): {10, 20}; >20: {25, 99}
    assert counts == [1, 3, 2, 2] and sum(counts) == len(vals)
    assert lines[0].split()[0] == "<1" and lines[-1].split()[0] == ">20"


def test_summary_reports_counts_and_balance(made):
    _, truth, ds = made
    text = summarize_dataset(ds)
    assert f"GIFs: {N}" in text
    assert f"max {max(truth['n_frames'])}" in text
    table = format_label_balance(ds.mask, ds.positive)
    tl, tp = int(ds.mask.sum()), int(ds.positive[ds.mask].sum())
    assert table.splitlines()[-1].split()[1:3] == [str(tl), str(tp)]
    assert table in text


def test_script_generates_skips_and_summarises(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, str(REPO / "scripts" / "make_demo_data.py"), "--out", str(out),
           "--n-gifs", "8", "--seed", "1", "--workers", "1"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "wrote" in first.stdout and "GIFs: 8" in first.stdout and "Label balance" in first.stdout
    stamp = (out / "manifest.csv").stat().st_mtime_ns
    second = subprocess.run(cmd + ["--no-summary"], capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "present" in second.stdout
    assert (out / "manifest.csv").stat().st_mtime_ns == stamp
    truth = json.loads((out / "demo_truth.json").read_text())
    assert truth["params"]["seed"] == 1 and truth["params"]["n_gifs"] == 8


def test_zero_delays_are_never_mixed_with_others():
    """A 0-delay image inside a timed GIF is one composed frame to the spec (gif_format)."""
    rng = np.random.default_rng(5)
    lat = demo.sample_latents(2000, rng)
    for s in demo.sample_gif_specs(lat, [f"g{i}" for i in range(2000)], rng):
        assert all(d == 0 for d in s.delays_ms) or all(d > 0 for d in s.delays_ms), s.delays_ms
