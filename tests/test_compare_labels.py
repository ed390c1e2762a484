"""scripts/compare_labels.py: the two rating rules' labels of a dataset, against a count by hand."""

import math
import runpy
from pathlib import Path

from gifemo.data.labels import trueskill_scores
from gifemo.data.manifest import load_dataset, read_votes

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_labels.py"


def test_counts_match_an_entry_by_entry_count(demo_dir, capsys):
    script = runpy.run_path(str(SCRIPT))
    votes, _ = read_votes(demo_dir / "votes.csv")
    ids = load_dataset(demo_dir).ids
    (mu_a, sd_a), (mu_b, sd_b) = (trueskill_scores(votes, ids, rule=r) for r in ("trueskill", "gifgif"))
    labelled = up = down = pos_a = pos_b = 0
    for i in range(mu_a.shape[0]):
        for j in range(mu_a.shape[1]):
            if math.isnan(mu_a[i, j]):
                continue
            a, b = mu_a[i, j] - 3 * sd_a[i, j] > 25, mu_b[i, j] - 3 * sd_b[i, j] > 25
            labelled, pos_a, pos_b = labelled + 1, pos_a + a, pos_b + b
            up, down = up + (b and not a), down + (a and not b)
    d = script["rule_difference"](str(demo_dir))
    assert (d["labelled"], d["positive_trueskill"], d["positive_gifgif"]) == (labelled, pos_a, pos_b)
    assert (d["to_positive"], d["to_negative"]) == (up, down) and up + down > 0
    assert 0.5 < d["tau_min"] <= d["tau_median"] <= 1.0 and d["max_abs_dy"] > 0
    assert script["main"]([str(demo_dir)]) == 0
    assert f"labels that change: {up + down:,}" in capsys.readouterr().out


def test_a_folder_without_a_manifest_is_named(tmp_path, capsys):
    script = runpy.run_path(str(SCRIPT))
    assert script["main"]([str(tmp_path)]) == 2
    assert "manifest.csv" in capsys.readouterr().err
