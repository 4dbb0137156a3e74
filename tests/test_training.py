"""The training loop: reproducible, equal to a plain implementation, stops on divergence."""

import numpy as np
import pytest

from mnistnet import model
from mnistnet.errors import DivergenceError
from mnistnet.functions import sigmoid, softmax
from mnistnet.optimizers import make_optimizer
from mnistnet.training import fit


def _blobs(n=240, n_classes=3, seed=0, dtype=np.float64):
    """Separable synthetic data: each class lights up its own block of pixels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.random((n, 784)) * 60
    for c in range(n_classes):
        X[y == c, c * 100 : c * 100 + 100] += 150
    return X.astype(dtype), y


def _reference_fit(params, X, y, head, epochs, lr, batch_size, reduction, seed, wd=0.0):
    """The straightforward loop: fresh arrays everywhere, the formulas as in the docstring."""
    p = {k: v.copy() for k, v in params.items()}
    n_out = p["W2"].shape[1]
    Y = y.reshape(-1, 1).astype(X.dtype) if n_out == 1 else np.eye(n_out, dtype=X.dtype)[y]
    rng = np.random.default_rng(seed)
    n = len(X)
    for _ in range(epochs):
        order = np.arange(n) if batch_size is None else rng.permutation(n)
        step = n if batch_size is None else batch_size
        for s in range(0, n, step):
            idx = order[s : s + step]
            Xb, Yb = X[idx], Y[idx]
            A1 = 1 / (1 + np.exp(-(Xb @ p["W1"] + p["b1"])))
            Z2 = A1 @ p["W2"] + p["b2"]
            P = 1 / (1 + np.exp(-Z2)) if head == "binary" else softmax(Z2)
            D2 = P - Yb
            if reduction == "mean":
                D2 = D2 / len(idx)
            D1 = (D2 @ p["W2"].T) * A1 * (1 - A1)
            grads = {"W1": Xb.T @ D1, "b1": D1.sum(0), "W2": A1.T @ D2, "b2": D2.sum(0)}
            grads["W1"] = grads["W1"] + wd * p["W1"]
            grads["W2"] = grads["W2"] + wd * p["W2"]
            for k in p:
                p[k] = p[k] - lr * grads[k]
    return p


@pytest.mark.parametrize(
    "head,n_out,batch_size,reduction,lr,wd",
    [
        ("binary", 1, None, "sum", 1e-5, 0.0),
        ("multiclass", 3, 32, "mean", 0.05, 0.0),
        ("multiclass", 3, 32, "mean", 0.05, 0.01),
    ],
)
def test_fit_equals_the_straightforward_implementation(head, n_out, batch_size, reduction, lr, wd):
    X, y = _blobs(n_classes=2 if head == "binary" else 3)
    params = model.init_params(784, 16, n_out, seed=5)
    expected = _reference_fit(params, X, y, head, 5, lr, batch_size, reduction, seed=9, wd=wd)
    fit(
        params,
        X,
        y,
        head=head,
        optimizer=make_optimizer("sgd"),
        epochs=5,
        lr=lr,
        batch_size=batch_size,
        reduction=reduction,
        weight_decay=wd,
        rng=np.random.default_rng(9),
    )
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_seed_gives_identical_weights(dtype):
    X, y = _blobs(dtype=dtype)
    X = X / dtype(255)
    runs = []
    for _ in range(2):
        params = model.init_params(784, 16, 3, method="xavier", seed=1, dtype=dtype)
        history = fit(
            params,
            X,
            y,
            head="multiclass",
            optimizer=make_optimizer("momentum"),
            epochs=3,
            lr=0.1,
            batch_size=50,
            reduction="mean",
            augment_shift=2,
            rng=np.random.default_rng(4),
            lr_schedule="cosine",
        )
        runs.append((params, history))
    (p1, h1), (p2, h2) = runs
    assert all(p1[k].tobytes() == p2[k].tobytes() for k in p1)
    assert all(p.dtype == dtype for p in p1.values())
    assert h1.column("loss") == h2.column("loss")


def test_history_records_learning():
    X, y = _blobs()
    Xt, yt = _blobs(seed=1)
    params = model.init_params(784, 16, 3, seed=2)
    seen = []
    history = fit(
        params,
        X / 255,
        y,
        head="multiclass",
        optimizer=make_optimizer("adam"),
        epochs=6,
        lr=0.01,
        batch_size=32,
        reduction="mean",
        X_test=Xt / 255,
        y_test=yt,
        on_epoch=seen.append,
    )
    assert seen == history.records
    assert [r.epoch for r in history.records] == list(range(1, 7))
    assert history.records[-1].loss < history.records[0].loss / 2
    assert history.records[-1].test_acc > 0.95
    secs = history.column("seconds")
    assert secs == sorted(secs)


def test_divergence_stops_with_a_clear_error():
    X, y = _blobs()
    params = model.init_params(784, 16, 3, seed=2)
    with pytest.raises(DivergenceError, match="smaller --lr"):
        fit(params, X, y, head="multiclass", optimizer=make_optimizer("gd"), epochs=5, lr=1e306)


def test_ctrl_c_returns_the_history_so_far():
    X, y = _blobs()
    params = model.init_params(784, 8, 3, seed=2)

    def interrupt_at_two(record):
        if record.epoch == 2:
            raise KeyboardInterrupt

    history = fit(
        params,
        X,
        y,
        head="multiclass",
        optimizer=make_optimizer("gd"),
        epochs=10,
        lr=1e-5,
        on_epoch=interrupt_at_two,
    )
    assert history.interrupted and len(history.records) == 2


def test_input_dtype_must_match_parameters():
    X, y = _blobs(dtype=np.float32)
    params = model.init_params(784, 8, 3, seed=2)
    with pytest.raises(ValueError, match="dtype"):
        fit(params, X, y, head="multiclass", optimizer=make_optimizer("gd"), epochs=1, lr=1e-5)


def test_sigmoid_used_by_reference_matches_ours():
    # The tanh form is exact to ~1e-16 absolute (losses never take its log).
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-12, atol=1e-16)


def test_an_exploding_but_finite_loss_is_divergence():
    X, y = _blobs()
    params = model.init_params(784, 16, 3, seed=2)
    with pytest.raises(DivergenceError, match="mean loss reached"):
        fit(params, X, y, head="multiclass", optimizer=make_optimizer("gd"), epochs=5, lr=1e6)


def test_ctrl_c_mid_epoch_hands_back_the_last_finished_epoch(monkeypatch):
    from mnistnet import training

    X, y = _blobs()
    one = model.init_params(784, 8, 3, seed=2)
    fit(one, X, y, head="multiclass", optimizer=make_optimizer("gd"), epochs=1, lr=1e-5,
        X_test=X, y_test=y)  # fmt: skip

    calls = []
    real_score = training.score

    def score(*args, **kwargs):  # the second epoch's test scoring: its update is done
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_score(*args, **kwargs)

    monkeypatch.setattr(training, "score", score)
    interrupted = model.init_params(784, 8, 3, seed=2)
    history = fit(interrupted, X, y, head="multiclass", optimizer=make_optimizer("gd"),
                  epochs=5, lr=1e-5, X_test=X, y_test=y)  # fmt: skip
    assert history.interrupted and len(history.records) == 1
    assert all(np.array_equal(one[k], interrupted[k]) for k in one)
