"""Dataset folder format: round trips, and garbage that must be reported row by row."""

import numpy as np
import pytest

from gifemo.data.emotions import EMOTIONS, emotion_index
from gifemo.data.labels import Vote, label_targets, trueskill_scores
from gifemo.data.manifest import GifDataset, ManifestError, load_dataset, write_dataset


def _gifs(folder, names):
    (folder / "gifs").mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / "gifs" / n).write_bytes(b"GIF89a")
    return [f"gifs/{n}" for n in names]


def _write(folder, text, name="manifest.csv"):
    (folder / name).write_text(text, encoding="utf-8")


@pytest.fixture
def good(tmp_path):
    rel = _gifs(tmp_path, ["a.gif", "b.gif", "c.gif"])
    votes = [Vote("fear", "a", "b", "left"), Vote("fear", "b", "c", "neither"),
             Vote("pride", "c", "a", "right"), Vote("fear", "a", "c", "left")]
    write_dataset(tmp_path, ["a", "b", "c"], rel,
                  [["Happy", " TV "], [], ["cartoons &  comics", "happy", "happy"]],
                  flags={"cartoon": [False, False, True], "multi_scene": [True, False, False]},
                  votes=votes)
    return tmp_path, votes


def test_round_trip_with_votes(good):
    folder, votes = good
    ds = load_dataset(folder)
    assert isinstance(ds, GifDataset) and len(ds) == 3
    assert ds.ids == ["a", "b", "c"]
    assert ds.paths == [(folder / "gifs" / n).resolve() for n in ("a.gif", "b.gif", "c.gif")]
    assert all(p.is_absolute() for p in ds.paths)
    assert ds.tags == [["happy", "tv"], [], ["cartoons & comics", "happy", "happy"]]
    np.testing.assert_array_equal(ds.flags["cartoon"], [False, False, True])
    np.testing.assert_array_equal(ds.flags["multi_scene"], [True, False, False])
    assert ds.flags["cartoon"].dtype == bool
    mu, sigma = trueskill_scores(votes, ["a", "b", "c"])
    np.testing.assert_array_equal(ds.mu, mu)
    np.testing.assert_array_equal(ds.sigma, sigma)
    y, positive, mask = label_targets(mu, sigma)
    np.testing.assert_array_equal(ds.y, y)
    np.testing.assert_array_equal(ds.positive, positive)
    np.testing.assert_array_equal(ds.mask, mask)
    assert ds.mask[:, emotion_index("fear")].all() and ds.mask.sum() == 3 + 2
    # the manifest file itself is accepted too
    assert load_dataset(folder / "manifest.csv").ids == ds.ids


def test_round_trip_with_score_arrays(tmp_path):
    rel = _gifs(tmp_path, ["x.gif", "y.gif"])
    mu = np.full((2, 17), np.nan)
    sigma = np.full((2, 17), np.nan)
    mu[0, 3], sigma[0, 3] = 31.123456789012345, 1.5
    mu[1, 16], sigma[1, 16] = -2.0, 0.0
    write_dataset(tmp_path, ["x", "y"], rel, [["a"], ["b"]], scores=(mu, sigma))
    ds = load_dataset(tmp_path)
    np.testing.assert_array_equal(ds.mu, mu)        # exact: floats written with repr
    np.testing.assert_array_equal(ds.sigma, sigma)
    assert ds.flags == {}
    assert ds.positive[0, 3] and not ds.positive[1].any()


def test_score_rows_and_hand_written_csv(tmp_path):
    rel = _gifs(tmp_path, ["x.gif"])
    write_dataset(tmp_path, ["x"], rel, [[]], scores=[("x", "anger", 40.0, 2.0)])
    ds = load_dataset(tmp_path)
    assert ds.mu[0, emotion_index("anger")] == 40.0 and ds.y[0, emotion_index("anger")] == 34.0
    # column order, header case, spaces, a BOM and blank lines are tolerated
    (tmp_path / "manifest.csv").write_text("\ufeffTags , ID,path\n\n happy|sad , x , gifs/x.gif\n\n",
                                           encoding="utf-8")
    (tmp_path / "scores.csv").write_text("sigma,mu,emotion,id\n1,30,Fear,x\n", encoding="utf-8")
    ds = load_dataset(tmp_path)
    assert ds.tags == [["happy", "sad"]] and ds.mu[0, emotion_index("fear")] == 30.0


def test_no_label_file_gives_an_unlabelled_dataset(tmp_path):
    rel = _gifs(tmp_path, ["x.gif"])
    write_dataset(tmp_path, ["x"], rel, [["a"]])
    ds = load_dataset(tmp_path)
    assert ds.mu.shape == (1, len(EMOTIONS)) and np.isnan(ds.mu).all() and not ds.mask.any()


def _problems(folder):
    with pytest.raises(ManifestError) as info:
        load_dataset(folder)
    err = info.value
    assert isinstance(err, ValueError)
    return err, {(f, r) for f, r, _ in err.problems}


def test_every_bad_manifest_row_is_reported_at_once(tmp_path):
    _gifs(tmp_path, ["ok.gif", "ok2.gif"])
    _write(tmp_path, "\n".join([
        "id,path,tags,cartoon",
        "a,gifs/ok.gif,happy,0",            # row 2 fine
        ",gifs/ok.gif,happy,0",             # row 3 empty id
        "a,gifs/ok2.gif,sad,1",             # row 4 duplicate id
        "b,gifs/missing.gif,,0",            # row 5 missing file
        "c,gifs/ok2.gif,,yes",              # row 6 bad flag
        "d,gifs/ok2.gif",                   # row 7 too few fields
        "e,,x,1",                           # row 8 empty path
    ]) + "\n")
    err, where = _problems(tmp_path)
    assert where == {("manifest.csv", r) for r in (3, 4, 5, 6, 7, 8)}
    text = str(err)
    for needle in ("row 3: empty id", "row 4: duplicated id 'a' (first on row 2)", "missing.gif",
                   "row 6: flag cartoon='yes'", "row 7: 2 fields, header has 4", "row 8: empty path"):
        assert needle in text, needle


def test_missing_column(tmp_path):
    _write(tmp_path, "id,tags\na,happy\n")
    err, where = _problems(tmp_path)
    assert where == {("manifest.csv", 1)} and "missing column(s) path" in str(err)


def test_bad_votes_are_reported_with_rows(tmp_path):
    rel = _gifs(tmp_path, ["a.gif", "b.gif"])
    write_dataset(tmp_path, ["a", "b"], rel, [[], []])
    _write(tmp_path, "\n".join([
        "emotion,left,right,choice",
        "fear,a,b,left",        # 2 fine
        "joy,a,b,left",         # 3 unknown emotion
        "fear,a,ghost,right",   # 4 unknown id
        "fear,a,b,equal",       # 5 bad choice
        "fear,b,b,left",        # 6 self
        "fear,a,b",             # 7 short
    ]) + "\n", "votes.csv")
    err, where = _problems(tmp_path)
    assert where == {("votes.csv", r) for r in (3, 4, 5, 6, 7)}
    for needle in ("unknown emotion 'joy'", "'ghost' is not in the dataset", "unknown choice 'equal'",
                   "compared with itself"):
        assert needle in str(err)


def test_bad_scores_are_reported_with_rows(tmp_path):
    rel = _gifs(tmp_path, ["a.gif"])
    write_dataset(tmp_path, ["a"], rel, [[]])
    _write(tmp_path, "\n".join([
        "id,emotion,mu,sigma",
        "a,fear,30,2",          # 2 fine
        "a,fear,31,2",          # 3 duplicate pair
        "a,anger,high,2",       # 4 non-numeric mu
        "a,shame,30,nan",       # 5 non-finite sigma
        "a,pride,30,-1",        # 6 negative sigma
        "zz,guilt,30,1",        # 7 unknown id
        "a,joy,30,1",           # 8 unknown emotion
    ]) + "\n", "scores.csv")
    err, where = _problems(tmp_path)
    assert where == {("scores.csv", r) for r in (3, 4, 5, 6, 7, 8)}
    for needle in ("second score for (a, fear) (first on row 2)", "mu='high' is not a number",
                   "sigma='nan' is not finite", "negative", "'zz' is not in manifest.csv",
                   "unknown emotion 'joy'"):
        assert needle in str(err), needle


def test_problems_in_several_files_come_together(tmp_path):
    rel = _gifs(tmp_path, ["a.gif"])
    write_dataset(tmp_path, ["a"], rel + [], [[]])
    _write(tmp_path, "id,path,tags\na,gifs/a.gif,\nb,gifs/nope.gif,\n")
    _write(tmp_path, "emotion,left,right,choice\nfear,a,c,left\n", "votes.csv")
    err, where = _problems(tmp_path)
    assert where == {("manifest.csv", 3), ("votes.csv", 2)}


def test_both_label_files_are_ambiguous(tmp_path):
    rel = _gifs(tmp_path, ["a.gif"])
    write_dataset(tmp_path, ["a"], rel, [[]], scores=[("a", "fear", 30.0, 1.0)])
    _write(tmp_path, "emotion,left,right,choice\n", "votes.csv")
    err, _ = _problems(tmp_path)
    assert "ambiguous" in str(err)


@pytest.mark.parametrize("content, needle", [
    (b"", "empty file"),
    (b"id,path,tags\n\xff\xfe,x,y\n", "not UTF-8"),
    (b"id,path,tags,id\n", "duplicated column(s) id"),
    (b"id,path,tags\n", "no GIFs listed"),
])
def test_unusable_manifest_files(tmp_path, content, needle):
    (tmp_path / "manifest.csv").write_bytes(content)
    err, _ = _problems(tmp_path)
    assert needle in str(err)


def test_missing_folder_or_manifest(tmp_path):
    err, _ = _problems(tmp_path / "nowhere")
    assert "manifest.csv" in str(err) and "not found" in str(err)


def test_unexpected_column_in_votes(tmp_path):
    rel = _gifs(tmp_path, ["a.gif", "b.gif"])
    write_dataset(tmp_path, ["a", "b"], rel, [[], []])
    _write(tmp_path, "emotion,left,right,choice,weight\nfear,a,b,left,1\n", "votes.csv")
    err, where = _problems(tmp_path)
    assert ("votes.csv", 1) in where and "weight" in str(err)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(ids=["a", "a"]), "duplicated id"),
    (dict(ids=["a", ""]), "non-empty"),
    (dict(tags=[["x|y"], []]), "separator"),
    (dict(tags=["xy", []]), "list of strings"),
    (dict(rel_paths=["a.gif"]), "one entry per GIF"),
    (dict(flags={"id": [0, 1]}), "flag column name"),
    (dict(flags={"cartoon": [0]}), "2 GIFs"),
    (dict(votes=[Vote("fear", "a", "b", "left")], scores=[("a", "fear", 1.0, 1.0)]), "not both"),
    (dict(votes=[Vote("fear", "a", "q", "left")]), "bad votes"),
    (dict(scores=[("a", "joy", 1.0, 1.0)]), "unknown emotion"),
])
def test_write_dataset_rejects_bad_input(tmp_path, kwargs, needle):
    args = dict(ids=["a", "b"], rel_paths=["a.gif", "b.gif"], tags=[[], []])
    args.update(kwargs)
    with pytest.raises(ValueError, match=needle):
        write_dataset(tmp_path, **args)
    assert not (tmp_path / "manifest.csv").exists()


def test_write_refuses_to_create_ambiguous_labels(tmp_path):
    rel = _gifs(tmp_path, ["a.gif", "b.gif"])
    write_dataset(tmp_path, ["a", "b"], rel, [[], []], votes=[Vote("fear", "a", "b", "left")])
    with pytest.raises(ValueError, match="ambiguous"):
        write_dataset(tmp_path, ["a", "b"], rel, [[], []], scores=[("a", "fear", 1.0, 1.0)])
    assert not (tmp_path / "scores.csv").exists()
    assert load_dataset(tmp_path).mask.sum() == 2


def test_error_message_is_capped_but_problems_are_complete(tmp_path):
    rows = "\n".join(f"g{i},gifs/none{i}.gif," for i in range(250))
    _write(tmp_path, "id,path,tags\n" + rows + "\n")
    err, where = _problems(tmp_path)
    assert len(err.problems) == 250 and "and 50 more" in str(err)
