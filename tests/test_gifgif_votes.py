"""GIFGIF's vote records (metric,left,right,choice[,country]) in votes.csv, and labels=gifgif."""

import numpy as np
import pytest

from gifemo.data.labels import Vote, trueskill_scores
from gifemo.data.manifest import (
    ManifestError,
    load_dataset,
    read_votes,
    write_dataset,
    write_gifgif_votes,
)

GIFGIF_TEXT = """metric,left,right,choice,country
happiness,3o7abKhOpu0NwenH3O,l0MYt5jPR6QX5pnqM,left,US
happiness,l0MYt5jPR6QX5pnqM,26ufdipQqU2lhNA4g,both,
fear,26ufdipQqU2lhNA4g,3o7abKhOpu0NwenH3O,neither,FR
fear,3o7abKhOpu0NwenH3O,26ufdipQqU2lhNA4g,right,GB
"""
IDS = ["3o7abKhOpu0NwenH3O", "l0MYt5jPR6QX5pnqM", "26ufdipQqU2lhNA4g"]


def _folder(tmp_path, votes_text=GIFGIF_TEXT):
    (tmp_path / "gifs").mkdir()
    for i in IDS:
        (tmp_path / "gifs" / f"{i}.gif").write_bytes(b"GIF89a")
    write_dataset(tmp_path, IDS, [f"gifs/{i}.gif" for i in IDS], [[], [], []])
    (tmp_path / "votes.csv").write_text(votes_text, encoding="utf-8")
    return tmp_path


def test_gifgif_records_round_trip_byte_for_byte(tmp_path):
    folder = _folder(tmp_path)
    votes, countries = read_votes(folder / "votes.csv")
    assert votes[1] == Vote("happiness", "l0MYt5jPR6QX5pnqM", "26ufdipQqU2lhNA4g", "both")
    assert countries == ["US", "", "FR", "GB"]
    out = write_gifgif_votes(tmp_path / "again.csv", votes, countries)
    assert out.read_text(encoding="utf-8") == GIFGIF_TEXT
    assert read_votes(out) == (votes, countries)
    # without a country column
    write_gifgif_votes(tmp_path / "plain.csv", votes)
    assert read_votes(tmp_path / "plain.csv") == (votes, [None] * 4)


@pytest.mark.parametrize("rule", ["trueskill", "gifgif"])
def test_load_dataset_rates_gifgif_records_with_either_rule(tmp_path, rule):
    folder = _folder(tmp_path)
    ds = load_dataset(folder, labels=rule)
    votes, _ = read_votes(folder / "votes.csv")
    mu, sigma = trueskill_scores(votes, IDS, rule=rule)
    np.testing.assert_array_equal(ds.mu, mu)
    np.testing.assert_array_equal(ds.sigma, sigma)


def test_the_two_rules_are_cached_apart(tmp_path):
    folder = _folder(tmp_path)
    a = load_dataset(folder, labels="trueskill")
    b = load_dataset(folder, labels="gifgif")
    assert not np.allclose(a.mu[np.isfinite(a.mu)], b.mu[np.isfinite(b.mu)])
    assert len(list((folder / ".gifemo_cache").glob("*.npz"))) == 2
    np.testing.assert_array_equal(load_dataset(folder, labels="gifgif").mu, b.mu)  # cache hit
    with pytest.raises(ValueError, match="labels must be one of"):
        load_dataset(folder, labels="elo")


@pytest.mark.parametrize("text, needle", [
    ("metric,left,right,choice\nhappiness,3o7abKhOpu0NwenH3O,nope,left\n", "not in the dataset"),
    ("metric,left,right,choice\nhapiness,3o7abKhOpu0NwenH3O,l0MYt5jPR6QX5pnqM,left\n",
     "unknown emotion"),
    ("metric,left,right,choice\nfear,3o7abKhOpu0NwenH3O,l0MYt5jPR6QX5pnqM,equal\n",
     "unknown choice"),
    ("metric,left,right,choice,ip\nfear,3o7abKhOpu0NwenH3O,l0MYt5jPR6QX5pnqM,left,1.2.3.4\n",
     "unexpected column"),
    ("metric,left,right\nfear,3o7abKhOpu0NwenH3O,l0MYt5jPR6QX5pnqM\n", "missing column"),
    ("metric,left,right,choice\nfear,3o7abKhOpu0NwenH3O,l0MYt5jPR6QX5pnqM\n", "3 fields"),
])
def test_bad_gifgif_records_are_reported_by_row(tmp_path, text, needle):
    folder = _folder(tmp_path, text)
    with pytest.raises(ManifestError, match=needle) as e:
        load_dataset(folder, labels="gifgif")
    assert "votes.csv" in str(e.value)
