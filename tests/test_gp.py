"""GP baseline against scikit-learn's GaussianProcessRegressor (same model, same eq. 4)."""

import logging

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from gifemo.models.gp import ExactGP, GPScorer


def _data(n=80, d=5, seed=0):
    g = np.random.default_rng(seed)
    X = g.random((n, d))
    y = 10 * np.sin(3 * X[:, 0]) + 5 * X[:, 1] + g.standard_normal(n) + 20
    return X, y


def test_marginal_likelihood_optimum_matches_sklearn():
    X, y = _data()
    ours = ExactGP().fit(X, y)
    kernel = (ConstantKernel(1.0, (1e-5, 1e5)) * RBF(1.0, (1e-5, 1e5))
              + WhiteKernel(0.1, (1e-6, 1e5)))
    sk = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=5,
                                  random_state=0).fit(X, y)
    # sklearn's value is eq. 4 on standardised targets, like ours
    assert ours.log_marginal_likelihood_ >= sk.log_marginal_likelihood_value_ - 1e-6
    assert ours.log_marginal_likelihood_ == pytest.approx(sk.log_marginal_likelihood_value_,
                                                          abs=1e-4)
    k = sk.kernel_
    assert ours.amplitude_ == pytest.approx(k.k1.k1.constant_value, rel=1e-2)
    assert ours.length_scale_ == pytest.approx(k.k1.k2.length_scale, rel=1e-2)
    assert ours.noise_ == pytest.approx(k.k2.noise_level, rel=1e-2)


def test_predictions_match_sklearn_at_the_same_hyperparameters():
    X, y = _data(seed=1)
    Xs = np.random.default_rng(2).random((15, 5))
    ours = ExactGP().fit(X, y)
    a, ell, s2 = ours.amplitude_, ours.length_scale_, ours.noise_
    # with noise: sklearn's std includes the WhiteKernel on the test diagonal
    sk = GaussianProcessRegressor(ConstantKernel(a, "fixed") * RBF(ell, "fixed")
                                  + WhiteKernel(s2, "fixed"), normalize_y=True,
                                  optimizer=None).fit(X, y)
    m, v = ours.predict(Xs, include_noise=True)
    ms, ss = sk.predict(Xs, return_std=True)
    np.testing.assert_allclose(m, ms, rtol=1e-9)
    np.testing.assert_allclose(v, ss ** 2, rtol=1e-7)
    # latent variance (eq. 3): noise only on the training diagonal (sklearn's alpha)
    sk2 = GaussianProcessRegressor(ConstantKernel(a, "fixed") * RBF(ell, "fixed"), alpha=s2,
                                   normalize_y=True, optimizer=None).fit(X, y)
    m2, s2k = sk2.predict(Xs, return_std=True)
    m, v = ours.predict(Xs)
    np.testing.assert_allclose(m, m2, rtol=1e-9)
    np.testing.assert_allclose(v, s2k ** 2, rtol=1e-6)


def _multi(n=60, T=3, seed=3):
    g = np.random.default_rng(seed)
    X = g.random((n, 4))
    Y = np.stack([30 * X[:, t % 4] + g.standard_normal(n) for t in range(T)], 1)
    mask = g.random((n, T)) < 0.7
    return X, Y, mask


def test_scorer_uses_only_masked_rows_and_eq5():
    X, Y, mask = _multi()
    a = GPScorer().fit(X, Y, mask)
    Y2 = np.where(mask, Y, np.nan)
    b = GPScorer().fit(X, Y2, mask)
    Xs = np.random.default_rng(4).random((7, 4))
    np.testing.assert_array_equal(a.predict(Xs)[0], b.predict(Xs)[0])
    assert list(a.n_train_) == list(mask.sum(0))
    # each column against scikit-learn's GP on that emotion's labelled rows, at the fitted
    # hyperparameters (latent variance: noise on the training diagonal only), then eq. 5 as
    # printed, log p = -(50 - mu) / (2 V), and the squared form, applied to sklearn's mean and
    # variance (p itself can underflow to 0 far below 50, which is why ranking uses the log)
    log_p = a.log_score(Xs)
    assert log_p.shape == (7, 3) and (log_p < 0).all()
    np.testing.assert_array_equal(a.score(Xs), np.exp(log_p))
    a.score_form = "squared"
    log_sq = a.log_score(Xs)
    a.score_form = "printed"
    for t, gp in enumerate(a.models_):
        rows = mask[:, t]
        sk = GaussianProcessRegressor(ConstantKernel(gp.amplitude_, "fixed")
                                      * RBF(gp.length_scale_, "fixed"), alpha=gp.noise_,
                                      normalize_y=True, optimizer=None).fit(X[rows], Y[rows, t])
        m, sd = sk.predict(Xs, return_std=True)
        np.testing.assert_allclose(log_p[:, t], -(50 - m) / (2 * sd ** 2), rtol=1e-6)
        np.testing.assert_allclose(log_sq[:, t], -(50 - m) ** 2 / (2 * sd ** 2), rtol=1e-6)
    # each column is the single-emotion GP on its labelled rows
    t = 1
    single = ExactGP(seed=t).fit(X[mask[:, t]], Y[mask[:, t], t])
    np.testing.assert_allclose(a.predict(Xs)[0][:, t], single.predict(Xs)[0], rtol=1e-12)


def test_eq5_by_hand(monkeypatch):
    """Printed eq. 5: µ = 50 scores 1 whatever V, then -(50 - µ)/(2V); squared form:
    (50 - µ)² = 2V scores e^-1; in both a larger V ranks a low µ higher."""
    mean = np.array([[50.0, 40.0, 30.0, 30.0]])
    var = np.array([[1.0, 50.0, 200.0, 50.0]])
    printed, squared = GPScorer(), GPScorer(score_form="squared")
    for g in (printed, squared):
        monkeypatch.setattr(g, "predict", lambda X: (mean, var))
    np.testing.assert_allclose(printed.log_score(None), [[0.0, -0.1, -0.05, -0.2]])
    np.testing.assert_allclose(squared.log_score(None), [[0.0, -1.0, -1.0, -4.0]])
    np.testing.assert_allclose(squared.score(None), [[1.0, 0.36787944117144233, 0.36787944117144233,
                                                      0.01831563888873418]])


def test_subset_above_max_train_is_seeded_and_logged(caplog):
    X, Y, mask = _multi(n=80)
    with caplog.at_level(logging.WARNING, logger="gifemo.models.gp"):
        a = GPScorer(max_train=20, seed=5).fit(X, Y, mask)
    assert (a.n_train_ == 20).all()
    assert "max_train=20" in caplog.text and "random subset" in caplog.text
    b = GPScorer(max_train=20, seed=5).fit(X, Y, mask)
    np.testing.assert_array_equal(a.predict(X[:5])[0], b.predict(X[:5])[0])
    c = GPScorer(max_train=20, seed=6).fit(X, Y, mask)
    assert not np.array_equal(a.predict(X[:5])[0], c.predict(X[:5])[0])


def test_bad_inputs_raise():
    X, Y, mask = _multi(T=17)
    mask[:, 3] = False
    mask[0, 3] = True
    with pytest.raises(ValueError, match=r"3 \(contentment\) has 1 labelled"):
        GPScorer().fit(X, Y, mask)
    with pytest.raises(ValueError, match="max_train"):
        GPScorer(max_train=1)
    with pytest.raises(RuntimeError, match="before fit"):
        GPScorer().predict(X)
