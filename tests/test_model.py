"""The network: notebook initialisation, a worked example, gradients by finite differences."""

import math

import numpy as np
import pytest
from helpers import numeric_gradients, random_params, relative_error

from mnistnet import model
from mnistnet.data import targets
from mnistnet.functions import sigmoid
from mnistnet.optimizers import make_optimizer
from mnistnet.training import fit, score


def test_notebook_init_reproduces_np_random_seed_draws():
    saved = np.random.get_state()
    try:
        for seed, n_out in ((3, 1), (29, 10)):
            np.random.seed(seed)
            W1 = np.random.normal(0, 0.01, (256, 784))
            W2 = np.random.normal(0, 0.01, (n_out, 256))
            params = model.init_params(784, 256, n_out, method="notebook", seed=seed)
            assert np.array_equal(params["W1"], W1.T)
            assert np.array_equal(params["W2"], W2.T)
            assert not params["b1"].any() and not params["b2"].any()
            assert params["W1"].flags.c_contiguous
    finally:
        np.random.set_state(saved)


def test_xavier_scales_by_fan_in():
    p = model.init_params(784, 256, 10, method="xavier", seed=0, dtype=np.float32)
    assert p["W1"].dtype == np.float32
    assert abs(p["W1"].std() - 1 / math.sqrt(784)) < 0.002
    assert abs(p["W2"].std() - 1 / math.sqrt(256)) < 0.01


def test_worked_example_by_hand():
    params = {
        "W1": np.array([[0.1, -0.2], [0.3, 0.4]]),
        "b1": np.array([0.0, 0.1]),
        "W2": np.array([[0.5], [-0.6]]),
        "b2": np.array([0.2]),
    }
    X = np.array([[1.0, 2.0]])
    h1 = 1 / (1 + math.exp(-(0.1 * 1 + 0.3 * 2 + 0.0)))
    h2 = 1 / (1 + math.exp(-(-0.2 * 1 + 0.4 * 2 + 0.1)))
    p = 1 / (1 + math.exp(-(0.5 * h1 - 0.6 * h2 + 0.2)))
    P, cache = model.forward(params, X, "binary")
    assert P[0, 0] == pytest.approx(p, rel=1e-14)
    assert model.loss(cache, np.array([[1.0]]), "binary")[0] == pytest.approx(-math.log(p))
    # Output delta p - y, then dW2 = a1 * delta.
    grads = model.backward(params, cache, np.array([[1.0]]))
    np.testing.assert_allclose(grads["W2"][:, 0], [h1 * (p - 1), h2 * (p - 1)], rtol=1e-13)
    np.testing.assert_allclose(grads["b2"], [p - 1], rtol=1e-13)


def _objective(params, X, Y, task, reduction, weight_decay=0.0):
    """The objective as model.backward's docstring writes it, per sample where it says so."""
    _, cache = model.forward(params, X, task)
    losses = model.loss(cache, Y, task)
    penalty = weight_decay / 2 * ((params["W1"] ** 2).sum() + (params["W2"] ** 2).sum())
    if reduction == "example":  # every sample's loss carries its own penalty
        return sum(loss + penalty for loss in losses)
    data = losses.sum() if reduction == "sum" else losses.mean()
    return data + penalty


@pytest.mark.parametrize("task,n_out", [("binary", 1), ("multiclass", 4)])
@pytest.mark.parametrize(
    "reduction,weight_decay",
    [("sum", 0.0), ("mean", 0.0), ("mean", 0.3), ("sum", 0.3), ("example", 0.3)],
)
def test_gradients_match_finite_differences(task, n_out, reduction, weight_decay):
    rng = np.random.default_rng(42)
    n, n_in, n_hidden = 7, 6, 5
    params = random_params(rng, n_in, n_hidden, n_out)
    X = rng.normal(0, 1, (n, n_in))
    if task == "binary":
        Y = rng.integers(0, 2, (n, 1)).astype(float)
    else:
        Y = np.eye(n_out)[rng.integers(0, n_out, n)]
    _, cache = model.forward(params, X, task)
    grads = model.backward(params, cache, Y, reduction, weight_decay)
    grads = {k: v.copy() for k, v in grads.items()}

    numeric = numeric_gradients(
        params, lambda: _objective(params, X, Y, task, reduction, weight_decay), eps=1e-5
    )
    for name in params:
        rel = relative_error(grads[name], numeric[name])
        assert rel < 1e-6, f"{name}: relative error {rel:.2e}"


@pytest.mark.parametrize("task,n_out", [("binary", 1), ("multiclass", 4)])
def test_label_smoothing_gradient_is_p_minus_smoothed_y_by_finite_differences(task, n_out):
    """The loss towards smoothed targets, written from the probabilities; backward given the
    smoothed targets is its gradient."""
    rng = np.random.default_rng(3)
    n, n_in, n_hidden, smoothing = 6, 5, 4, 0.2
    params = random_params(rng, n_in, n_hidden, n_out)
    X = rng.normal(0, 1, (n, n_in))
    y = rng.integers(0, max(n_out, 2), n)
    Y = targets(y, n_out, smoothing=smoothing)
    assert Y.min() == pytest.approx(smoothing / max(n_out, 2))

    def objective():
        P, cache = model.forward(params, X, task)
        if task == "binary":
            direct = -(Y * np.log(P) + (1 - Y) * np.log(1 - P)).sum()
        else:
            direct = -(Y * np.log(P)).sum()
        assert model.loss(cache, Y, task).sum() == pytest.approx(direct, rel=1e-12)
        return direct

    _, cache = model.forward(params, X, task)
    grads = {k: v.copy() for k, v in model.backward(params, cache, Y).items()}
    numeric = numeric_gradients(params, objective)
    for name in params:
        np.testing.assert_allclose(grads[name], numeric[name], rtol=1e-6, atol=1e-8, err_msg=name)


def test_pack_shares_memory_with_named_views():
    params = model.init_params(784, 8, 10, seed=0)
    vector, views = model.pack(params)
    assert vector.shape == (784 * 8 + 8 + 8 * 10 + 10,)
    assert all(np.array_equal(views[k], params[k]) for k in params)
    vector += 1
    assert views["b2"][0] == 1 and params["b2"][0] == 0  # a copy of params, views of vector
    ws = model.Workspace(views, 4)
    assert np.shares_memory(ws.grads["W1"], ws.grad_vector)
    assert ws.grads["b2"].shape == (10,)


def test_workspace_views_give_the_same_result_as_fresh_arrays():
    rng = np.random.default_rng(1)
    params = model.init_params(784, 32, 10, method="xavier", seed=1)
    X = rng.random((50, 784))
    P_fresh, _ = model.forward(params, X, "multiclass")
    P_fresh = P_fresh.copy()
    ws = model.Workspace(params, 64)
    P_ws, _ = model.forward(params, X, "multiclass", ws)
    assert np.array_equal(P_fresh, P_ws)
    with pytest.raises(ValueError, match="cannot hold"):
        model.forward(params, rng.random((65, 784)), "multiclass", ws)


def test_predict_proba_in_chunks_equals_one_pass_and_score_agrees():
    rng = np.random.default_rng(2)
    params = model.init_params(784, 16, 10, method="xavier", seed=2)
    X = rng.random((103, 784))
    y = rng.integers(0, 10, 103)
    whole, _ = model.forward(params, X, "multiclass")
    np.testing.assert_allclose(model.predict_proba(params, X, "multiclass", batch_size=10), whole)
    loss, acc, P = score(params, X, y, "multiclass", batch_size=10)
    assert acc == np.mean(whole.argmax(axis=1) == y)
    expected = -np.log(whole[np.arange(103), y]).mean()
    assert loss == pytest.approx(expected, rel=1e-10)


def test_binary_prediction_threshold():
    P = np.array([[0.49], [0.5], [0.9]])
    assert model.predict(P).tolist() == [0, 1, 1]
    assert sigmoid(np.array([0.0]))[0] == 0.5


def _epoch_displacement(X, y, reduction, batch_size, lr, weight_decay):
    """How far one epoch of plain gradient steps moves the weights, as a flat vector."""
    params = model.init_params(X.shape[1], 8, 3, method="xavier", seed=0)
    start, _ = model.pack(params)
    fit(params, X, y, task="multiclass", optimizer=make_optimizer("sgd"), epochs=1, lr=lr,
        batch_size=batch_size, reduction=reduction, weight_decay=weight_decay,
        rng=np.random.default_rng(0))  # fmt: skip
    end, _ = model.pack(params)
    return end - start


def test_per_example_rates_and_decay_transfer_across_batch_sizes():
    """With ``example``, an epoch moves the weights the same way at batch 8 and at batch 64
    (to first order in the rate); the summed loss's once-per-batch decay and the mean's
    per-batch rate do not."""
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (256, 10))
    y = rng.integers(0, 3, 256)

    def mismatch(reduction, lr, weight_decay):
        small = _epoch_displacement(X, y, reduction, 8, lr, weight_decay)
        large = _epoch_displacement(X, y, reduction, 64, lr, weight_decay)
        return relative_error(small, large)

    assert mismatch("example", 1e-4, 1.0) < 0.01
    assert mismatch("sum", 1e-4, 1.0) > 0.1  # the decay counts 32 times at batch 8, 4 at 64
    assert mismatch("mean", 1e-2, 0.0) > 0.5  # 8 times as many steps of the same size
