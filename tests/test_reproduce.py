"""The quick reproduction end to end on the tiny generated demo set (conftest), and the pieces
that can be checked against an independent computation.

The end-to-end report (the module fixture: 7 methods x 2 seeds, ~1 min on 2 cores) is marked
``slow`` (``make test-all``); its tests check relations between the tables, not only that they
parse. The independent pieces (SVM baseline, overlap, PCA, orderings) stay in the fast tier."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from gifemo.data.emotions import EMOTIONS
from gifemo.eval.metrics import PR_AUC_NOTE
from gifemo.paper.reproduce import PAPER_TABLE2, load_settings, run_overrides
from gifemo.paper.report import gp_score_lines, orderings

CONF = Path(__file__).resolve().parents[1] / "conf"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXPECTED_FILES = [
    "report.md", "table1.csv", "table1.md", "table2.csv", "table2.md", "table2_per_seed.csv",
    "table2_test_counts.csv", "table4.csv", "table4.md", "fig6_clusters.png",
    "fig7_pr_averaged.png", "fig7_pr_per_emotion.png", "fig8_correlations.png",
    "fig9_timing.png", "fig10_overlap_flags.png",
]


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def quick_report(session_root, compose_cfg, tmp_path_factory):
    """The quick setting, two seeds, on the conftest's tiny demo set and feature cache."""
    from gifemo.paper.report import reproduce

    out = tmp_path_factory.mktemp("reproduce")
    settings = load_settings(CONF / "reproduce.yaml", "quick")
    # the trace-norm-type solvers are the slow part (seconds to tens of seconds per fit even
    # here): one loose fit at a fixed strength keeps the module near a minute on 2 cores
    mo = settings["method_overrides"]
    mo["trace_norm"] = ["select_rho=false", "model.penalty.rho=30.0", "model.tol=1.0e-2"]
    mo["clustered_mtl"] = ["select_rho=false", "model.penalty.rho1=10.0", "model.penalty.rho2=1.0",
                           "model.tol=1.0e-2", "select_k_trace_rho=30.0"]
    settings["tag_feature_rows"] = ["text_lasso"]     # beyond the paper: one extra row
    rep, report = reproduce(lambda ov: compose_cfg(out / "unused", ov), settings, out,
                            seeds=[0, 1])
    return rep, report, out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_file_is_written_and_pngs_are_valid(quick_report):
    _, report, out = quick_report
    assert report == out / "report.md"
    for name in EXPECTED_FILES:
        p = out / name
        assert p.is_file() and p.stat().st_size > 0, name
        if name.endswith(".png"):
            data = p.read_bytes()
            assert data[:8] == PNG_MAGIC, name
            from PIL import Image

            with Image.open(p) as im:
                im.verify()
                assert min(im.size) >= 300, (name, im.size)
    text = report.read_text(encoding="utf-8")
    for name in EXPECTED_FILES:
        if name.endswith(".png"):
            assert f"]({name})" in text, f"report.md does not link {name}"
    assert "scikit-learn" in text and "torch" in text  # software versions
    # every PR-AUC table says it is the interpolated curve's area (Table 2, beyond-the-paper)
    assert text.count(PR_AUC_NOTE) == 2 and PR_AUC_NOTE in (out / "table2.md").read_text()
    # the report says which form of eq. 5 the GP row ranked by (the default: as printed)
    assert "- GP (visual + tags) ranks by eq. 5 as the paper prints it" in text
    assert "## Beyond the paper" in text and (out / "table2_tag_features.csv").is_file()
    beyond = _read(out / "table2_tag_features.csv")
    assert [r["model"] for r in beyond] == ["visual_tag_lasso"]
    assert math.isfinite(float(beyond[0]["text_pr_auc_mean"])) and beyond[0]["tags_text_n_seeds"] == "0"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_table2_parses_with_every_method_and_finite_values(quick_report):
    rep, _, out = quick_report
    rows = _read(out / "table2.csv")
    assert [r["method"] for r in rows] == list(PAPER_TABLE2)
    for r in rows:
        assert int(r["n_seeds"]) == 2
        for c in ("pr_auc_mean", "pr_auc_std", "n_tilde_mean", "n_tilde_std"):
            assert math.isfinite(float(r[c])), (r["method"], c)
        assert 0 < float(r["pr_auc_mean"]) <= 1
        assert float(r["paper_pr_auc"]) == PAPER_TABLE2[r["method"]][2]
    per_seed = _read(out / "table2_per_seed.csv")
    assert len(per_seed) == 2 * (len(PAPER_TABLE2) + 1)          # + the text_lasso row
    # the mean in table2.csv is the mean of the per-seed values
    for r in rows:
        for col in ("pr_auc", "n_tilde"):
            vals = [float(p[col]) for p in per_seed if p["method"] == r["method"]]
            assert float(r[f"{col}_mean"]) == pytest.approx(np.mean(vals)), (r["method"], col)
            assert float(r[f"{col}_std"]) == pytest.approx(np.std(vals, ddof=1)), (r["method"], col)
        # ... and the per-seed values are the runs' own test summaries
        runs = {x.seed: x for x in rep.of(r["method"])}
        for p in per_seed:
            if p["method"] == r["method"]:
                assert float(p["pr_auc"]) == pytest.approx(runs[int(p["seed"])].pr_auc, abs=1e-12)
    # the Unsorted row (an all-zero W) equals the constant-score baseline of every run
    for p in per_seed:
        if p["method"] == "unsorted":
            assert float(p["pr_auc"]) == pytest.approx(float(p["unsorted_pr_auc"]), abs=1e-9)
    # k of clustered MTL chosen by silhouette
    assert all(math.isfinite(float(p["k"])) for p in per_seed if p["method"] == "clustered_mtl")
    counts = _read(out / "table2_test_counts.csv")
    assert [c["emotion"] for c in counts] == list(EMOTIONS)
    n_test = rep.of("unsorted")[0].n_test
    assert [float(c["n_test_min"]) <= n <= float(c["n_test_max"])
            for c, n in zip(counts, n_test)] == [True] * len(EMOTIONS)
    md = (out / "table2.md").read_text(encoding="utf-8")
    assert md.count("\n| ") == len(PAPER_TABLE2) and "0.555" in md


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_table1_and_table4_parse(quick_report):
    rep, _, out = quick_report
    t1 = _read(out / "table1.csv")
    assert {r["emotion"] for r in t1} <= set(EMOTIONS) and t1
    for r in t1:
        assert r["generic"] in ("0", "1") and int(r["n_positive_gifs"]) >= 1
        assert (r["rank"] == "") == (r["generic"] == "1")
    t4 = _read(out / "table4.csv")
    assert [r["emotion"] for r in t4] == list(EMOTIONS)
    vals = np.array([[float(r[c]) for c in ("precision", "recall", "f1")] for r in t4])
    ok = np.isfinite(vals).all(1)
    assert ok.any() and ((vals[ok] >= 0) & (vals[ok] <= 1)).all()
    assert "C3D + linear SVM (paper)" in (out / "table4.md").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_table4_f1_follows_from_precision_and_recall(quick_report):
    """Each seed's F1 is 2PR / (P + R) of that seed's P and R; table4.csv holds the per-emotion
    means over seeds of the seeds' own values, so its F1 is at most 2PR / (P + R) of the mean P
    and R (the harmonic mean is concave) and equals the mean of the seeds' F1."""
    from gifemo.paper.report import table4

    rep, _, out = quick_report
    t4 = _read(out / "table4.csv")
    per_seed = []
    svm = load_settings(CONF / "reproduce.yaml", "quick")["svm"]  # what reproduce() used
    for seed in (0, 1):
        rows, _ = table4(rep, [seed], **svm)
        prf = np.array([[r["precision"], r["recall"], r["f1"]] for r in rows])
        ok = np.isfinite(prf).all(1)
        p, r, f = prf[ok].T
        with np.errstate(invalid="ignore", divide="ignore"):
            harmonic = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
        np.testing.assert_allclose(f, harmonic, atol=1e-12)
        per_seed.append(prf)
    mean = np.nanmean(np.stack(per_seed), axis=0)
    table = np.array([[float(r[c]) if r[c] != "" else np.nan for c in ("precision", "recall", "f1")]
                      for r in t4])
    np.testing.assert_allclose(table, mean, atol=1e-12, equal_nan=True)
    ok = np.isfinite(table).all(1)
    p, r, f = table[ok].T
    assert ok.sum() >= 5
    assert (f <= np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-300), 0.0) + 1e-12).all()


def test_svm_baseline_matches_a_direct_sklearn_fit():
    from sklearn.metrics import f1_score
    from sklearn.model_selection import train_test_split
    from sklearn.svm import LinearSVC

    from gifemo.paper.svm_baseline import svm_binary_relevance

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    P = np.stack([X[:, 0] > 0.5, X[:, 1] > 0.0, np.zeros(120, bool)], 1)
    M = np.ones_like(P)
    M[:10, 1] = False
    res = svm_binary_relevance(X, P, M, seed=3)
    idx = np.flatnonzero(M[:, 1])
    tr, te = train_test_split(idx, test_size=0.2, stratify=P[idx, 1], random_state=3 * 1000 + 1)
    clf = LinearSVC(C=1.0, class_weight="balanced", max_iter=5000).fit(X[tr], P[tr, 1])
    assert res.f1[1] == pytest.approx(f1_score(P[te, 1], clf.predict(X[te])))
    assert res.n_test[1] == te.size
    assert math.isnan(res.f1[2])  # no positives: left out, not a zero
    assert res.mean_std("f1")[0] == pytest.approx(np.mean(res.f1[:2]))


def test_overlap_rates_and_pca_by_hand():
    from gifemo.paper.figures import overlap_rates, pca_2d

    P = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], bool)
    O = overlap_rates(P)
    assert O[0, 1] == pytest.approx(2 / 3) and O[1, 0] == pytest.approx(2 / 3)
    assert O[0, 0] == 1 and np.isnan(O[2]).all()
    W = np.array([[1.0, -1.0, 2.0], [0.0, 0.0, 0.0]])  # columns on a line: one PC
    coords, ratio = pca_2d(W)
    assert ratio[0] == pytest.approx(1.0) and np.allclose(coords[:, 1], 0)
    assert np.allclose(np.abs(coords[:, 0]), np.abs(W[0] - W[0].mean()))


def test_orderings_and_overrides():
    rows = [{"label": "a", "paper_pr_auc": 0.3, "pr_auc_mean": 0.5, "pr_auc_std": 0.01},
            {"label": "b", "paper_pr_auc": 0.5, "pr_auc_mean": 0.4, "pr_auc_std": 0.01}]
    assert orderings(rows) == [("b", "a", False, False)]
    ov = run_overrides("gp", 3, Path("/r"), ["seed=9", "data=demo", "paths.output_dir=/x"])
    assert ov == ["experiment=table2_gp", "data=demo", "seed=3", "paths.output_dir=/r"]
    with pytest.raises(ValueError, match="unknown Table 2 method"):
        run_overrides("svm", 0, Path("/r"), [])
    with pytest.raises(ValueError, match="unknown setting"):
        load_settings(CONF / "reproduce.yaml", "huge")


def test_the_gp_rows_score_form_is_named_from_its_config():
    from omegaconf import OmegaConf

    cfgs = {"visual_lasso": OmegaConf.create({"model": {"penalty": {"rho": 1.0}}}),
            "gp": OmegaConf.create({"model": {"score_form": "squared"}})}
    assert gp_score_lines(cfgs) == ["- GP (visual + tags) ranks by the squared form of eq. 5, "
                                    "exp(−(50 − µ)²/(2V)) (`model.score_form=squared`)."]
    cfgs["gp"].model.score_form = "printed"
    assert "as the paper prints it, exp(−(50 − µ)/(2V))" in gp_score_lines(cfgs)[0]
    cfgs["gp"].model.target_max = 100.0  # the score scale's maximum is the config's, not 50
    assert "as the paper prints it, exp(−(100 − µ)/(2V))" in gp_score_lines(cfgs)[0]
    assert gp_score_lines({"unsorted": OmegaConf.create({"model": {}})}) == []


def test_tag_feature_rows_rerun_the_paper_rows_with_text_tags():
    from types import SimpleNamespace

    from gifemo.paper.report import tag_feature_markdown, tag_feature_rows
    from gifemo.paper.reproduce import TAG_FEATURE_ROWS, Reproduction, row_label

    ov = run_overrides("text_clustered_mtl", 1, Path("/r"), ["data=demo", "features=tags"], ["a=1"])
    assert ov == ["experiment=table2_clustered_mtl", "data=demo", "features=tags", "a=1",
                  "features=visual_text", "seed=1", "paths.output_dir=/r"]   # the last one wins
    assert row_label("tags_text_lasso") == "Lasso (visual + tags + text tags)"
    assert {b for b, _, _ in TAG_FEATURE_ROWS.values()} <= set(PAPER_TABLE2)

    def run(m, seed, auc):
        return SimpleNamespace(method=m, seed=seed, pr_auc=auc, n_tilde=1000.0 / auc)

    runs = [run("trace_norm", 0, 0.5), run("trace_norm", 1, 0.7),
            run("text_trace_norm", 0, 0.6), run("text_trace_norm", 1, 0.6),
            run("tags_text_trace_norm", 0, 0.8)]
    rows = tag_feature_rows(Reproduction(runs=runs, dataset=None))
    assert len(rows) == 1 and rows[0]["model"] == "trace_norm"
    assert rows[0]["tags_pr_auc_mean"] == pytest.approx(0.6)
    assert rows[0]["tags_pr_auc_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert rows[0]["text_pr_auc_std"] == 0.0 and rows[0]["tags_text_n_seeds"] == 1
    md = tag_feature_markdown(rows)
    assert "| Trace norm | 0.600 ± 0.141" in md and "0.800 ± 0.000 (Ñ 1,250 ± 0)" in md


def test_resume_reuses_finished_runs_and_reruns_missing_changed_or_torn_ones(tmp_path, monkeypatch,
                                                                            caplog):
    """run_table2 with a stand-in run_train: every finished run leaves its result; a resumed
    reproduction reads those (no training), and runs again exactly the ones whose result file
    is missing, unreadable or from other overrides — with the same results as a fresh run."""
    from types import SimpleNamespace

    from gifemo import training
    from gifemo.eval.metrics import evaluate_rankings
    from gifemo.paper.reproduce import RESULT_FILE, run_table2

    g = np.random.default_rng(0)
    positive, mask = g.random((40, 3)) < 0.3, np.ones((40, 3), bool)
    dataset = SimpleNamespace(positive=positive, mask=mask)
    calls = []

    def data(tags_only):
        layout = SimpleNamespace(uses_visual=not tags_only, visual_dim=2)
        return {"dataset": dataset, "features": SimpleNamespace(
            X=np.ones((40, 3)), rows=np.arange(40), layout=layout)}

    from gifemo.models.selection import CV_MEMO
    memo_dirs = []

    def fake_run_train(cfg):
        calls.append((cfg.method, cfg.seed))
        memo_dirs.append(CV_MEMO.directory)
        scores = g.random((40, 3))
        pr = SimpleNamespace(summaries={"test": evaluate_rankings(positive, scores, mask)})
        objects = {"pr_callback": pr, "split": SimpleNamespace(test=mask), "run_dir": cfg.run_dir,
                   "model": SimpleNamespace(), **data(cfg.group == "tags")}
        return {}, objects

    def fake_load_data(cfg, run_dir):
        calls.append(("load_data", cfg.method))
        return data(cfg.group == "tags")

    monkeypatch.setattr(training, "run_train", fake_run_train)
    monkeypatch.setattr(training, "load_data", fake_load_data)

    def compose(ov):
        d = dict(o.split("=", 1) for o in ov)
        method = d["experiment"].removeprefix("table2_")
        group = "tags" if method == "tag_lasso" else "visual_tags"
        return SimpleNamespace(method=method, seed=int(d["seed"]), run_dir=d["paths.output_dir"],
                               group=group, features=SimpleNamespace(group=group))

    methods, seeds = ["tag_lasso", "gp"], [0, 1]
    first = run_table2(compose, methods, seeds, tmp_path, ["x=1"], resume=True)
    assert calls == [("tag_lasso", 0), ("gp", 0), ("tag_lasso", 1), ("gp", 1)]  # seeds outer
    assert all((tmp_path / "runs" / m / f"seed{s}" / RESULT_FILE).exists()
               for m in methods for s in seeds)
    # the runs' cross-validations are kept in the report folder (clustered MTL resumed in
    # a new process finds the trace-norm row's there); the memo is in memory only after
    assert memo_dirs == [tmp_path / "cv_memo"] * 4 and CV_MEMO.directory is None

    calls.clear()
    again = run_table2(compose, methods, seeds, tmp_path, ["x=1"], resume=True)
    # no training: only the data for the report (the dataset, then the visual features)
    assert calls == [("load_data", "tag_lasso"), ("load_data", "gp")]
    assert [(r.method, r.seed, r.pr_auc, r.n_tilde) for r in again.runs] == \
        [(r.method, r.seed, r.pr_auc, r.n_tilde) for r in first.runs]
    assert again.dataset is dataset and again.visual is not None

    (tmp_path / "runs" / "gp" / "seed0" / RESULT_FILE).unlink()
    (tmp_path / "runs" / "gp" / "seed1" / RESULT_FILE).write_bytes(b"torn")
    calls.clear()
    with caplog.at_level("WARNING"):
        run_table2(compose, methods, seeds, tmp_path, ["x=1"], resume=True)
    assert [c for c in calls if c[0] != "load_data"] == [("gp", 0), ("gp", 1)]
    assert "cannot be read" in caplog.text and "seed1" in caplog.text

    calls.clear()
    run_table2(compose, ["tag_lasso"], [0], tmp_path, ["x=2"], resume=True)  # other overrides
    assert calls == [("tag_lasso", 0)] and "ran with other overrides" in caplog.text
    calls.clear()
    run_table2(compose, ["tag_lasso"], [0], tmp_path, ["x=2"])  # no resume: always runs
    assert calls == [("tag_lasso", 0)]


def test_resume_needs_the_folder_to_continue(capsys):
    import runpy

    script = runpy.run_path(str(CONF.parent / "scripts" / "reproduce.py"))
    with pytest.raises(SystemExit) as e:
        script["main"](["--resume", "data=demo"])
    assert e.value.code == 2 and "--resume needs --out" in capsys.readouterr().err


def test_only_rows_keeps_the_settings_order_and_names_unknown_rows(capsys):
    import runpy

    from gifemo.paper.reproduce import TAG_FEATURE_ROWS, only_rows

    settings = load_settings(CONF / "reproduce.yaml", "full")
    tag_row = next(iter(TAG_FEATURE_ROWS))
    got = only_rows(settings, ["clustered_mtl", " trace_norm", tag_row, "unsorted"])
    assert got["methods"] == ["unsorted", "trace_norm", "clustered_mtl"]  # the setting's order
    assert got["tag_feature_rows"] == [tag_row]
    assert got["seeds"] == settings["seeds"] and settings["methods"][1] == "visual_lasso"
    with pytest.raises(ValueError, match="'lasso'.*rows: unsorted"):
        only_rows(settings, ["trace_norm", "lasso"])
    with pytest.raises(ValueError, match="no Table 2 row given; rows: unsorted"):
        only_rows(settings, ["", " "])

    script = runpy.run_path(str(CONF.parent / "scripts" / "reproduce.py"))
    with pytest.raises(SystemExit) as e:
        script["main"](["--methods", "trace_norm,nope", "data=demo"])
    assert e.value.code == 2 and "--methods: unknown Table 2 row(s) ['nope']" in \
        capsys.readouterr().err
