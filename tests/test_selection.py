"""ρ by cross-validation against scikit-learn's LassoCV; k by silhouette on planted clusters."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.linear_model import LassoCV
from sklearn.metrics import silhouette_score
from sklearn.model_selection import PredefinedSplit

from gifemo.eval.metrics import evaluate_rankings
from gifemo.models.selection import choose_k_silhouette, select_rho_cv
from gifemo.models.penalties import ClusteredMTLPenalty, L1Penalty, TraceNormPenalty
from gifemo.models.solvers import fit_multitask_linear



pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_mse_path_matches_sklearn_lasso_cv():
    # One fully labelled task, 5 equal folds: each fit has n_fit = 80 rows, so ρ maps to
    # sklearn's alpha = ρ / (2 n_fit) (unhalved loss), and mse_path_ is our fold MSE.
    g = np.random.default_rng(0)
    n, d = 100, 20
    X = g.standard_normal((n, d))
    y = X @ (g.standard_normal(d) * (g.random(d) < 0.3)) + g.standard_normal(n) + 2
    fold = np.repeat(np.arange(5), 20)[g.permutation(n)]
    rhos = [400.0, 100.0, 30.0, 5.0, 0.5]
    ours = select_rho_cv(X, y[:, None], (y > 2)[:, None], np.ones((n, 1), bool),
                         fold[:, None], L1Penalty, rhos, metric="mse", tol=1e-6)
    alphas = np.array(rhos) / (2 * 80)
    sk = LassoCV(alphas=alphas, cv=PredefinedSplit(fold), tol=1e-12, max_iter=100_000).fit(X, y)
    # sklearn sorts alphas decreasingly (our order too); mse_path_ is [n_alphas, n_folds]
    np.testing.assert_allclose(sk.alphas_, alphas)
    np.testing.assert_allclose(ours.fold_scores, sk.mse_path_, rtol=1e-3)
    assert ours.best == rhos[int(np.argmin(sk.mse_path_.mean(1)))]
    assert ours.best * 1 / 160 == pytest.approx(sk.alpha_)
    assert not ours.higher_is_better


def test_pr_auc_scores_are_validation_fold_aurocs_and_masks_are_respected():
    g = np.random.default_rng(1)
    N, d, T = 150, 10, 3
    X = g.standard_normal((N, d))
    Y = X @ g.standard_normal((d, T)) + g.standard_normal((N, T)) * 2 + 25
    positive = Y > 25
    train = g.random((N, T)) < 0.8
    fold = np.where(train, g.integers(0, 3, (N, T)), -1)
    grid = [50.0, 5.0]
    res = select_rho_cv(X, Y, positive, train, fold, TraceNormPenalty, grid)
    # recompute one cell by hand with the public pieces
    fit = fit_multitask_linear(X, Y, train & (fold != 1), TraceNormPenalty(5.0))
    pred = X @ fit.W.numpy() + fit.b.numpy()
    ref = evaluate_rankings(positive, pred, train & (fold == 1)).pr_auc
    assert res.fold_scores[1, 1] == pytest.approx(ref, abs=1e-3)
    assert res.best_index == int(np.argmax(res.fold_scores.mean(1)))
    assert res.higher_is_better and res.metric == "pr_auc"
    # entries outside train (the test part) cannot influence the choice
    Y2 = np.where(train, Y, 1e6)
    P2 = np.where(train, positive, True)
    res2 = select_rho_cv(X, Y2, P2, train, fold, TraceNormPenalty, grid)
    np.testing.assert_allclose(res2.fold_scores, res.fold_scores)


def _linear_tasks(seed, N, d, T, n_folds):
    """X, Y = X·W + noise, everything in train, rows dealt round-robin into folds."""
    g = np.random.default_rng(seed)
    X = g.standard_normal((N, d))
    Y = X @ g.standard_normal((d, T)) + g.standard_normal((N, T))
    return X, Y, np.ones((N, T), bool), np.tile(np.arange(N) % n_folds, (T, 1)).T


def test_tuple_grid_for_clustered_mtl():
    X, Y, train, fold = _linear_tasks(2, 80, 6, 4, n_folds=2)
    res = select_rho_cv(X, Y, Y > 0, train, fold, lambda p: ClusteredMTLPenalty(*p, k=2),
                        [(10.0, 0.1), (1.0, 1.0)], metric="mse")
    assert res.best in [(10.0, 0.1), (1.0, 1.0)] and res.fold_scores.shape == (2, 2)


def test_select_rho_validation():
    X = np.zeros((4, 2))
    Y = np.zeros((4, 1))
    tr = np.ones((4, 1), bool)
    with pytest.raises(ValueError, match="metric"):
        select_rho_cv(X, Y, Y > 0, tr, np.zeros((4, 1), int), L1Penalty, [1.0], metric="auc")
    with pytest.raises(ValueError, match="at least 2 folds"):
        select_rho_cv(X, Y, Y > 0, tr, np.zeros((4, 1), int), L1Penalty, [1.0])
    with pytest.raises(ValueError, match=r"fold\[0, 0\] = -1"):
        select_rho_cv(X, Y, Y > 0, tr, np.array([[-1], [0], [1], [1]]), L1Penalty, [1.0])


def _planted(k, T=17, d=40, seed=3, spread=0.05):
    g = np.random.default_rng(seed)
    centres = g.standard_normal((k, d)) * 3
    labels = np.arange(T) % k
    return (centres[labels] + spread * g.standard_normal((T, d))).T, labels


@pytest.mark.parametrize("k_true", [2, 4])
def test_choose_k_finds_planted_clusters(k_true):
    W, _ = _planted(k_true)
    k, sil = choose_k_silhouette(W, ks=range(2, 9))
    assert k == k_true
    assert set(sil) == set(range(2, 9))
    labels = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(W.T)
    assert sil[3] == pytest.approx(silhouette_score(W.T, labels))


def test_choose_k_validation():
    W, _ = _planted(2, T=5)
    with pytest.raises(ValueError, match=r"\[2, T - 1 = 4\].*5"):
        choose_k_silhouette(W, ks=[2, 5])
    with pytest.raises(ValueError, match="2-D"):
        choose_k_silhouette(np.zeros(5))


def test_a_repeated_cross_validation_is_served_from_the_memo(monkeypatch):
    """The trace-norm CV that clustered MTL needs for k is the one the trace-norm row has just
    run: the second call returns the same result without fitting; any changed input (one
    label, the tolerance, the grid) fits again; the caller gets its own copy."""
    import gifemo.models.selection as sel_mod
    X, Y, train, fold = _linear_tasks(4, 60, 5, 3, n_folds=3)
    fits = []
    real_fit = sel_mod.fit_multitask_linear
    monkeypatch.setattr(sel_mod, "fit_multitask_linear", lambda *a, **k: (fits.append(1), real_fit(*a, **k))[1])
    grid = [{"rho": 3.0}, {"rho": 0.3}]
    factory = TraceNormPenalty(1.0).with_settings
    first = select_rho_cv(X, Y, Y > 0, train, fold, factory, grid)
    n_first = len(fits)
    assert n_first == 2 * 3
    first.fold_scores[:] = -1.0                        # the caller's copy only
    again = select_rho_cv(X, Y, Y > 0, train, fold, factory, grid)
    assert len(fits) == n_first and np.all(again.fold_scores >= 0) and again.best == first.best
    Y2 = Y.copy()
    Y2[7, 1] += 1.0
    select_rho_cv(X, Y2, Y2 > 0, train, fold, factory, grid)
    select_rho_cv(X, Y, Y > 0, train, fold, factory, grid, tol=1e-5)
    select_rho_cv(X, Y, Y > 0, train, fold, factory, grid[:1])
    assert len(fits) == 3 * n_first + 3


def test_a_cross_validation_kept_on_disk_is_served_to_a_new_process(monkeypatch, tmp_path,
                                                                    caplog):
    """With CV_MEMO persisted in a folder (what a reproduction does), a later process (the
    memory cleared) gets the same result without fitting; a torn file is fitted again and
    rewritten; outside the block nothing is written."""
    import gifemo.models.selection as sel_mod
    X, Y, train, fold = _linear_tasks(4, 60, 5, 3, n_folds=3)
    fits = []
    real_fit = sel_mod.fit_multitask_linear
    monkeypatch.setattr(sel_mod, "fit_multitask_linear", lambda *a, **k: (fits.append(1), real_fit(*a, **k))[1])
    grid, factory = [{"rho": 3.0}, {"rho": 0.3}], TraceNormPenalty(1.0).with_settings
    folder = tmp_path / "cv_memo"
    with sel_mod.CV_MEMO.persisted_in(folder):
        first = select_rho_cv(X, Y, Y > 0, train, fold, factory, grid)
    assert sel_mod.CV_MEMO.directory is None and len(fits) == 6
    [kept] = list(folder.iterdir())
    sel_mod.CV_MEMO.clear()                            # a new process
    with sel_mod.CV_MEMO.persisted_in(folder):
        again = select_rho_cv(X, Y, Y > 0, train, fold, factory, grid)
    assert len(fits) == 6 and again.best == first.best
    np.testing.assert_array_equal(again.fold_scores, first.fold_scores)
    kept.write_bytes(kept.read_bytes()[:20])           # torn by a kill
    sel_mod.CV_MEMO.clear()
    with sel_mod.CV_MEMO.persisted_in(folder), caplog.at_level("WARNING"):
        third = select_rho_cv(X, Y, Y > 0, train, fold, factory, grid)
    assert len(fits) == 12 and third.best == first.best
    assert "cannot be read" in caplog.text and str(kept) in caplog.text
    sel_mod.CV_MEMO.clear()
    select_rho_cv(X, Y, Y > 0, train, fold, factory, grid[:1])
    assert len(list(folder.iterdir())) == 1            # not persisted: nothing new written


def test_content_key_sees_values_dtypes_and_shapes():
    from gifemo.models.fit_memo import content_key
    import torch
    a = np.arange(6.0)
    assert content_key(a, 1) == content_key(a.copy(), 1) == content_key(torch.arange(6.0, dtype=torch.float64), 1)
    b = a.copy()
    b[3] = np.nextafter(b[3], 10)
    keys = {content_key(a, 1), content_key(b, 1), content_key(a.astype(np.float32), 1),
            content_key(a.reshape(2, 3), 1), content_key(a, 2), content_key(a[::2], 1),
            content_key(a.view(np.int64), 1)}           # same bytes, another dtype
    assert len(keys) == 7


def test_folds_start_from_the_previous_fold_and_the_final_fit_from_their_mean(monkeypatch):
    """A fold's first fit starts from the previous fold's first solution (not W = 0), the
    folds' mean solution at the chosen value becomes the model's warm start, the final exact
    fit starts there (once), and it certifies the same optimum as a cold start."""
    import torch

    import gifemo.models.linear_recognizer as lr_mod
    import gifemo.models.selection as sel_mod
    from gifemo.models.layout import FeatureLayout
    from gifemo.models.linear_recognizer import LinearRecognizer
    from gifemo.models.selection import select_regularisation

    X, Y, train, fold = _linear_tasks(5, 90, 6, 3, n_folds=3)
    starts, sols = [], []
    real = sel_mod.fit_multitask_linear

    def recording(*a, W0=None, **k):
        starts.append(None if W0 is None else W0.clone())
        res = real(*a, W0=W0, **k)
        sols.append(res.W.clone())
        return res

    monkeypatch.setattr(sel_mod, "fit_multitask_linear", recording)
    model = LinearRecognizer(L1Penalty(1.0), cv_grid=[{"rho": 30.0}, {"rho": 3.0}],
                             layout=FeatureLayout("visual", 6, 0), emotions=["a", "b", "c"])
    select_regularisation(model, X, Y, Y > 0, train, fold, metric="mse")
    assert starts[0] is None                               # fold 0, first value: cold
    assert torch.equal(starts[1], sols[0])                 # then along the grid
    assert torch.equal(starts[2], sols[0]) and torch.equal(starts[4], sols[2])  # next folds
    best = [30.0, 3.0].index(model.penalty.rho)
    expected = torch.stack([sols[2 * j + best] for j in range(3)]).mean(0)
    torch.testing.assert_close(model.warm_start, expected, rtol=1e-12, atol=1e-12)

    final_starts = []
    real_final = lr_mod.fit_multitask_linear
    monkeypatch.setattr(lr_mod, "fit_multitask_linear",
                        lambda *a, W0=None, **k: (final_starts.append(W0), real_final(*a, W0=W0, **k))[1])
    warm = model.fit_exact(X, Y, train)
    cold = model.fit_exact(X, Y, train)                    # the warm start is used once
    assert final_starts[0] is expected or torch.equal(final_starts[0], expected)
    assert final_starts[1] is None and model.warm_start is None
    assert warm.converged and cold.converged
    assert abs(warm.objective - cold.objective) <= 2e-4 * cold.objective


def test_clustered_mtl_k_fit_starts_from_the_cross_validated_trace_norm(monkeypatch):
    """cv_trace_rho gives the folds' mean trace-norm W at the chosen ρ with it, and select_k's
    trace-norm fit starts there (the same W as a cold start, to the certified gap)."""
    import torch

    import gifemo.models.selection as sel_mod
    from gifemo.models.layout import FeatureLayout
    from gifemo.models.linear_recognizer import LinearRecognizer
    from gifemo.models.selection import cv_trace_rho, select_k

    X, Y, train, fold = _linear_tasks(6, 90, 6, 4, n_folds=3)
    grid = [{"rho": 30.0}, {"rho": 3.0}]
    rho, W0 = cv_trace_rho(X, Y, Y > 0, train, fold, grid, metric="mse")
    sel = select_rho_cv(X, Y, Y > 0, train, fold, TraceNormPenalty(1.0).with_settings, grid,
                        metric="mse")
    assert rho == sel.best["rho"]
    torch.testing.assert_close(W0, torch.from_numpy(sel.mean_W[sel.best_index]))
    starts = []
    real = sel_mod.fit_multitask_linear
    monkeypatch.setattr(sel_mod, "fit_multitask_linear",
                        lambda *a, W0=None, **k: (starts.append(W0), real(*a, W0=W0, **k))[1])

    def model():
        return LinearRecognizer(ClusteredMTLPenalty(1.0, 1.0, k=2),
                                layout=FeatureLayout("visual", 6, 0), emotions=list("abcd"))

    warm, cold = model(), model()
    m_warm = select_k(warm, X, Y, train, rho, W0=W0)
    m_cold = select_k(cold, X, Y, train, rho)
    assert starts[0] is W0 and starts[1] is None
    assert m_warm["cv/k"] == m_cold["cv/k"] and warm.penalty.k == cold.penalty.k
