"""CKA / CCA / SVCCA / PWCCA against their definitions on synthetic data with known answers.

References written here use other routes than the implementation: CKA via centred Gram matrices and the H K H L
trace (HSIC), CCA via QR decompositions and via the covariance eigenproblem, and scikit-learn's iterative CCA.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch

import ecco_widgets as ew
from ecco_widgets.analysis import CCAResult, cca, cka, pwcca, svcca


def rng(seed=0):
    return np.random.default_rng(seed)


def orthogonal(d, seed=1):
    q, r = np.linalg.qr(rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def hsic_cka(k, l):
    """CKA from Gram matrices by its definition: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), HSIC = tr(KHLH)."""
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    hsic = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def rbf_gram(x, threshold=1.0):
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * threshold**2 * np.median(d2)))


def qr_canonical_correlations(x, y):
    """Canonical correlations as cosines of principal angles: QR of each centred side, SVD of Qx^T Qy."""
    qx, _ = np.linalg.qr(x - x.mean(0))
    qy, _ = np.linalg.qr(y - y.mean(0))
    return np.linalg.svd(qx.T @ qy, compute_uv=False)


def covariance_canonical_correlations(x, y):
    """rho^2 = eigenvalues of Sxx^-1 Sxy Syy^-1 Syx."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    m = np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)
    eig = np.sort(np.linalg.eigvals(m).real)[::-1][: min(x.shape[1], y.shape[1])]
    return np.sqrt(np.clip(eig, 0, 1))


# ----- CKA -----
def test_cka_of_a_representation_with_itself_is_one():
    x = rng().normal(size=(100, 7))
    assert cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert cka(x, x, kernel="rbf") == pytest.approx(1.0, abs=1e-12)


def test_linear_cka_equals_its_hsic_definition_both_routes():
    r = rng(3)
    for n, dx, dy in [(60, 5, 9), (12, 30, 40)]:  # feature-space route, then Gram route (n < d)
        x = r.normal(size=(n, dx))
        y = x[:, :1] @ r.normal(size=(1, dy)) + r.normal(size=(n, dy))
        expected = hsic_cka(x @ x.T, y @ y.T)
        assert cka(x, y) == pytest.approx(expected, rel=1e-10)
        assert 0 < expected < 1


def test_rbf_cka_equals_its_hsic_definition():
    r = rng(4)
    x = r.normal(size=(40, 3))
    y = np.tanh(x @ r.normal(size=(3, 6))) + 0.3 * r.normal(size=(40, 6))
    for threshold in (0.5, 1.0, 2.0):
        assert cka(x, y, kernel="rbf", threshold=threshold) == pytest.approx(
            hsic_cka(rbf_gram(x, threshold), rbf_gram(y, threshold)), rel=1e-10)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_cka_is_invariant_to_orthogonal_maps_isotropic_scaling_and_shifts(kernel):
    r = rng(5)
    x = r.normal(size=(80, 6))
    y = np.tanh(x @ r.normal(size=(6, 10))) + 0.5 * r.normal(size=(80, 10))
    base = cka(x, y, kernel=kernel)
    assert 0.05 < base < 0.99
    assert cka(x @ orthogonal(6), y, kernel=kernel) == pytest.approx(base, rel=1e-9)
    assert cka(x, 7.5 * y @ orthogonal(10, seed=2) + 3.0, kernel=kernel) == pytest.approx(base, rel=1e-9)
    assert cka(y, x, kernel=kernel) == pytest.approx(base, rel=1e-12)


def test_linear_cka_is_not_invariant_to_arbitrary_invertible_maps():
    r = rng(6)
    x = r.normal(size=(200, 4))
    stretch = np.diag([100.0, 1.0, 0.01, 0.01])
    assert cka(x, x @ stretch) < 0.9
    assert float(cca(x, x @ stretch)) == pytest.approx(1.0, abs=1e-9)  # CCA is invariant to it


def test_cka_of_independent_data_is_near_zero_for_large_n():
    r = rng(7)
    x, y = r.normal(size=(5000, 5)), r.normal(size=(5000, 6))
    assert cka(x, y) < 0.01
    small = [cka(r.normal(size=(20, 5)), r.normal(size=(20, 6))) for _ in range(5)]
    assert np.mean(small) > cka(x, y)  # the estimator's bias shrinks with n


# ----- CCA -----
def test_cca_of_an_invertible_linear_map_is_one():
    r = rng(8)
    x = r.normal(size=(100, 6))
    a = r.normal(size=(6, 6))
    assert abs(np.linalg.det(a)) > 1e-3
    result = cca(x, x @ a + 4.0)
    assert float(result) == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(result.correlations, np.ones(6), atol=1e-10)
    # wider y = x @ A with A of full row rank: still all ones
    np.testing.assert_allclose(cca(x, x @ r.normal(size=(6, 9))).correlations, np.ones(6), atol=1e-9)


def test_cca_correlations_match_two_independent_routes():
    r = rng(9)
    n = 300
    z = r.normal(size=(n, 3))
    x = z @ r.normal(size=(3, 5)) + r.normal(size=(n, 5))
    y = z @ r.normal(size=(3, 4)) + 2 * r.normal(size=(n, 4))
    result = cca(x, y)
    assert isinstance(result, CCAResult) and isinstance(result, float)
    np.testing.assert_allclose(result.correlations, qr_canonical_correlations(x, y), atol=1e-10)
    np.testing.assert_allclose(result.correlations, covariance_canonical_correlations(x, y), atol=1e-8)
    assert float(result) == pytest.approx(result.correlations.mean(), abs=1e-15) == result.mean
    assert np.all(np.diff(result.correlations) <= 1e-12)


def test_cca_first_component_matches_scikit_learn():
    from sklearn.cross_decomposition import CCA

    r = rng(10)
    n = 500
    z = r.normal(size=(n, 1))
    x = z @ r.normal(size=(1, 4)) + r.normal(size=(n, 4))
    y = z @ r.normal(size=(1, 3)) + r.normal(size=(n, 3))
    model = CCA(n_components=1, max_iter=5000, tol=1e-12, scale=False).fit(x, y)
    xs, ys = model.transform(x, y)
    sk = abs(np.corrcoef(xs[:, 0], ys[:, 0])[0, 1])
    assert cca(x, y).correlations[0] == pytest.approx(sk, abs=1e-6)


def test_cca_weights_give_orthonormal_variates_with_those_correlations():
    r = rng(11)
    x, y = r.normal(size=(120, 5)), r.normal(size=(120, 3))
    y[:, 0] += x[:, 0] + 0.5 * x[:, 1]
    result = cca(x, y)
    vx, vy = result.transform(x, y)
    assert vx.shape == (120, 3) and vy.shape == (120, 3)
    np.testing.assert_allclose(vx.T @ vx, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(vy.T @ vy, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(np.diag(vx.T @ vy), result.correlations, atol=1e-10)
    np.testing.assert_allclose(vx.T @ vy - np.diag(np.diag(vx.T @ vy)), 0, atol=1e-10)
    np.testing.assert_allclose(result.transform(x=x), vx)
    back = pickle.loads(pickle.dumps(result))
    assert float(back) == float(result) and np.array_equal(back.correlations, result.correlations)


def test_cca_drops_degenerate_features():
    r = rng(12)
    x = r.normal(size=(50, 3))
    x = np.hstack([x, x[:, :1] + x[:, 1:2], np.zeros((50, 1))])  # rank 3 in 5 columns
    y = r.normal(size=(50, 4))
    result = cca(x, y)
    assert len(result.correlations) == 3
    np.testing.assert_allclose(result.correlations, qr_canonical_correlations(x[:, :3], y), atol=1e-10)


def test_cca_warns_when_correlations_are_forced_to_one():
    r = rng(13)
    x, y = r.normal(size=(10, 6)), r.normal(size=(10, 6))
    with pytest.warns(RuntimeWarning, match="force 3 canonical"):
        result = cca(x, y)
    np.testing.assert_allclose(result.correlations[:3], 1.0, atol=1e-9)


# ----- SVCCA -----
def shared_subspace(n=400, k=3, d=20, noise=0.05, seed=14):
    """x and y: the same k-dim signal through different maps in d dims, plus low-variance independent noise."""
    r = rng(seed)
    z = r.normal(size=(n, k))
    x = z @ r.normal(size=(k, d)) + noise * r.normal(size=(n, d))
    y = z @ r.normal(size=(k, d)) + noise * r.normal(size=(n, d))
    return x, y


def test_svcca_recovers_a_shared_low_dimensional_subspace():
    x, y = shared_subspace()
    result = svcca(x, y, keep=0.99)
    assert result.x_dims == 3 and result.y_dims == 3
    assert float(result) > 0.99
    assert float(cca(x, y)) < 0.6  # the noise directions dilute plain CCA
    assert svcca(x, y, keep=3).x_dims == 3
    assert svcca(x, y, keep=1.0).x_dims == 20


def test_svcca_is_cca_on_the_top_singular_directions():
    r = rng(15)
    x, y = r.normal(size=(200, 8)) @ np.diag(np.arange(8, 0, -1.0)), r.normal(size=(200, 6))
    y[:, 0] += x[:, 0]
    xc, yc = x - x.mean(0), y - y.mean(0)
    ux, sx, _ = np.linalg.svd(xc, full_matrices=False)
    uy, sy, _ = np.linalg.svd(yc, full_matrices=False)
    result = svcca(x, y, keep=4)
    assert result.y_dims == 4
    expected = qr_canonical_correlations(ux[:, :4] * sx[:4], uy[:, :4] * sy[:4])
    np.testing.assert_allclose(result.correlations, expected, atol=1e-10)
    frac = np.cumsum(sx**2) / np.sum(sx**2)
    assert svcca(x, y, keep=0.9).x_dims == int(np.argmax(frac >= 0.9)) + 1


# ----- PWCCA -----
def test_pwcca_of_an_invertible_map_is_one_and_weights_sum_to_one():
    r = rng(16)
    x = r.normal(size=(100, 5))
    result = pwcca(x, x @ r.normal(size=(5, 5)))
    assert float(result) == pytest.approx(1.0, abs=1e-10)
    assert result.weights.sum() == pytest.approx(1.0) and (result.weights >= 0).all()


def test_pwcca_weights_follow_the_definition():
    """alpha_i = sum_j |<h_i, x_j>| / total, h_i the unit canonical variates of x (computed here by QR route)."""
    r = rng(17)
    n = 400
    x = r.normal(size=(n, 4)) @ np.diag([5.0, 2.0, 1.0, 0.3])
    y = np.column_stack([x[:, 0] + r.normal(size=n), x[:, 3] + 0.1 * r.normal(size=n), r.normal(size=n)])
    result = pwcca(x, y, weights_from="x")
    xc, yc = x - x.mean(0), y - y.mean(0)
    qx, _ = np.linalg.qr(xc)
    qy, _ = np.linalg.qr(yc)
    a, rho, _ = np.linalg.svd(qx.T @ qy)
    h = qx @ a[:, :3]
    alpha = np.abs(h.T @ xc).sum(1)
    alpha /= alpha.sum()
    np.testing.assert_allclose(result.weights, alpha, rtol=1e-8)
    assert float(result) == pytest.approx(np.sum(alpha * rho), rel=1e-10)
    assert result.weights_from == "x"


def test_pwcca_weights_the_directions_that_carry_the_representation():
    """x: a high-variance direction shared with y plus a low-variance one that is not. CCA's mean sees one shared
    direction in two (about 0.5); PWCCA weights by projection and is close to 1."""
    r = rng(18)
    n = 2000
    s = r.normal(size=n)
    x = np.column_stack([10 * s, 0.1 * r.normal(size=n)])
    y = np.column_stack([s + 0.01 * r.normal(size=n), r.normal(size=n)])
    assert float(cca(x, y)) == pytest.approx(0.5, abs=0.05)
    assert float(pwcca(x, y)) > 0.98
    low, high = cca(x, y).correlations.min(), cca(x, y).correlations.max()
    assert low <= float(pwcca(x, y)) <= high


def test_pwcca_side_selection_and_scale_invariance():
    r = rng(19)
    x, y = r.normal(size=(300, 3)), r.normal(size=(300, 6))
    y[:, :3] += x
    assert pwcca(x, y).weights_from == "x"   # fewer dimensions
    assert pwcca(y, x).weights_from == "y"
    assert float(pwcca(x, y, weights_from="y")) == pytest.approx(float(pwcca(y, x, weights_from="x")), rel=1e-10)
    assert float(pwcca(3.0 * x, y)) == pytest.approx(float(pwcca(x, y)), rel=1e-10)


# ----- errors and inputs -----
def test_clear_errors():
    r = rng(20)
    x = r.normal(size=(30, 4))
    for fn in (cka, cca, svcca, pwcca):
        with pytest.raises(ew.InputError, match="same samples.*30 rows.*29"):
            fn(x, x[:29])
        with pytest.raises(ew.InputError, match="2-D"):
            fn(x[:, 0], x)
        with pytest.raises(ew.InputError, match="Too few samples"):
            fn(x[:1], x[:1])
        bad = x.copy()
        bad[3, 1] = np.nan
        with pytest.raises(ew.InputError, match="NaN"):
            fn(bad, x)
        with pytest.raises(ew.InputError, match="constant"):
            fn(np.ones((30, 2)), x)
    with pytest.raises(ew.InputError, match="Too few samples for CCA.*svcca"):
        cca(x[:4], x[:4])
    with pytest.raises(ew.InputError, match="kernel must be"):
        cka(x, x, kernel="cosine")
    with pytest.raises(ew.InputError, match="keep must be"):
        svcca(x, x, keep=0)
    with pytest.raises(ew.InputError, match="keep must be"):
        svcca(x, x, keep=1.5)
    with pytest.raises(ew.InputError, match="weights_from"):
        pwcca(x, x, weights_from="z")


def test_torch_tensors_and_model_hidden_states():
    import zoo

    lm = ew.LanguageModel(zoo.build("gpt2"))
    ids = torch.randint(0, zoo.VOCAB, (40,), generator=torch.Generator().manual_seed(0)).tolist()
    hidden = lm.analyze_ids(ids).hidden_states  # (n_layers + 1, n_tokens, d_model)
    assert cka(torch.from_numpy(hidden[2]), hidden[2]) == pytest.approx(1.0)
    values = [cka(hidden[0], hidden[layer]) for layer in range(hidden.shape[0])]
    assert all(0 <= v <= 1 for v in values) and values[0] == pytest.approx(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert 0 <= float(svcca(hidden[1], hidden[3], keep=5)) <= 1
