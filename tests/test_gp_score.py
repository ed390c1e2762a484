"""Eq. 5 (paper §3.5.2) by hand: the printed form exp(−(50 − µ)/(2V)) and the squared one."""

import math

import numpy as np
import pytest

from gifemo.models.gp import GPScorer


def test_printed_form_by_hand():
    s = GPScorer()
    assert s.score_form == "printed"
    # µ = 40, V = 2: −(50 − 40)/(2·2) = −2.5;  µ = 50: 0;  µ = 54, V = 0.5: +4
    out = s.log_score_from(np.array([[40.0, 50.0, 54.0]]), np.array([[2.0, 3.0, 0.5]]))
    np.testing.assert_allclose(out, [[-2.5, 0.0, 4.0]], rtol=0, atol=1e-15)


def test_squared_form_by_hand():
    s = GPScorer(score_form="squared")
    # µ = 40, V = 2: −100/4 = −25;  µ = 47, V = 0.5: −9/1 = −9;  µ = 54, V = 2: −16/4 = −4
    out = s.log_score_from(np.array([[40.0, 47.0, 54.0]]), np.array([[2.0, 0.5, 2.0]]))
    np.testing.assert_allclose(out, [[-25.0, -9.0, -4.0]], rtol=0, atol=1e-15)


def test_the_two_forms_rank_differently_and_target_max_is_used():
    mean = np.array([[45.0], [30.0]])  # near and certain vs far and uncertain
    var = np.array([[1.0], [10.0]])
    printed = GPScorer().log_score_from(mean, var)[:, 0]      # −2.5, −1.0
    squared = GPScorer(score_form="squared").log_score_from(mean, var)[:, 0]  # −12.5, −20
    np.testing.assert_allclose(printed, [-2.5, -1.0])
    np.testing.assert_allclose(squared, [-12.5, -20.0])
    assert printed[1] > printed[0] and squared[0] > squared[1]
    s = GPScorer(target_max=40.0)
    assert s.log_score_from(np.array([[30.0]]), np.array([[5.0]]))[0, 0] == pytest.approx(-1.0)
    assert math.exp(-1.0) == pytest.approx(float(np.exp(s.log_score_from(
        np.array([[30.0]]), np.array([[5.0]])))[0, 0]))


def test_unknown_form_is_refused():
    with pytest.raises(ValueError, match="score_form"):
        GPScorer(score_form="cubed")


def test_gp_recognizer_passes_the_form_and_keeps_it_in_its_hyperparameters():
    from gifemo.models.gp_recognizer import GPRecognizer
    from gifemo.models.layout import FeatureLayout

    lay = FeatureLayout("visual", 5, 0)
    r = GPRecognizer(score_form="squared", layout=lay)
    assert r.gp.score_form == "squared"
    assert r.hyperparameters()["score_form"] == "squared"
    assert GPRecognizer(layout=lay).gp.score_form == "printed"


def test_gp_recognizer_predicts_a_batch_once_for_scores_and_targets(monkeypatch):
    """An evaluation step asks for the scores and the predicted targets of one batch: the
    GPs predict it once; a new batch, or the same tensor changed in place, is predicted anew;
    the scores are eq. 5's log of that one prediction."""
    import torch

    from gifemo.models.gp_recognizer import GPRecognizer
    from gifemo.models.layout import FeatureLayout

    g = np.random.default_rng(0)
    X, Y = g.random((30, 5)), 25 + g.standard_normal((30, 2))
    r = GPRecognizer(layout=FeatureLayout("visual", 5, 0), emotions=["a", "b"])
    r.fit_exact(X, Y, np.ones((30, 2), bool))
    calls = []
    real = r.gp.predict
    monkeypatch.setattr(r.gp, "predict", lambda x: (calls.append(len(x)), real(x))[1])
    x = torch.from_numpy(g.random((7, 5)))
    scores, means = r(x), r.predicted_targets(x)
    assert calls == [7]
    mean, var = real(x.numpy())
    np.testing.assert_allclose(means.numpy(), mean, rtol=1e-6)
    np.testing.assert_allclose(scores.numpy(), r.gp.log_score_from(mean, var), rtol=1e-6)
    x.mul_(0.5)  # same tensor, new values
    r(x)
    r(torch.from_numpy(g.random((4, 5))))
    assert calls == [7, 7, 4]
