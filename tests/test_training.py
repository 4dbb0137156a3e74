"""The training loop: reproducible, equal to a plain implementation, stops on divergence."""

import math

import numpy as np
import pytest

from mnistnet import experiment, model, training
from mnistnet.config import resolve_config
from mnistnet.errors import DivergenceError
from mnistnet.functions import sigmoid, softmax
from mnistnet.optimizers import make_optimizer
from mnistnet.training import DIVERGED_LOSS, Batches, check_loss, fit


def _blobs(n=240, n_classes=3, seed=0, dtype=np.float64):
    """Separable synthetic data: each class lights up its own block of pixels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.random((n, 784)) * 60
    for c in range(n_classes):
        X[y == c, c * 100 : c * 100 + 100] += 150
    return X.astype(dtype), y


def _reference_fit(params, X, y, task, epochs, lr, batch_size, reduction, seed, wd=0.0):
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
            P = 1 / (1 + np.exp(-Z2)) if task == "binary" else softmax(Z2)
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
    "task,n_out,batch_size,reduction,lr,wd",
    [
        ("binary", 1, None, "sum", 1e-5, 0.0),
        ("multiclass", 3, 32, "mean", 0.05, 0.0),
        ("multiclass", 3, 32, "mean", 0.05, 0.01),
    ],
)
def test_fit_equals_the_straightforward_implementation(task, n_out, batch_size, reduction, lr, wd):
    X, y = _blobs(n_classes=2 if task == "binary" else 3)
    params = model.init_params(784, 16, n_out, seed=5)
    expected = _reference_fit(params, X, y, task, 5, lr, batch_size, reduction, seed=9, wd=wd)
    fit(
        params,
        X,
        y,
        task=task,
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
            task="multiclass",
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


@pytest.mark.parametrize("augment_shift", [0, 2])
def test_batches_cover_every_sample_once_per_epoch_in_buffers_made_once(augment_shift):
    X, _ = _blobs(n=50)
    ids = np.arange(50)  # as labels of a one-output net, Y is the same number
    batches = Batches(X, ids, 1, batch_size=16, augment_shift=augment_shift,
                      rng=np.random.default_rng(1))  # fmt: skip
    orders = []
    for _ in range(2):
        seen, first = [], None
        for Xb, Yb, yb in batches:
            first = Xb if first is None else first
            assert np.shares_memory(Xb, first)  # one buffer, batch after batch
            assert np.array_equal(Yb[:, 0], yb) and len(Xb) == len(yb) <= 16
            if not augment_shift:
                assert np.array_equal(Xb, X[yb])
            seen += yb.tolist()
        orders.append(seen)
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(50))
    assert orders[0] != orders[1]  # a fresh order each epoch


def test_history_records_learning():
    X, y = _blobs()
    Xt, yt = _blobs(seed=1)
    params = model.init_params(784, 16, 3, seed=2)
    seen = []
    history = fit(
        params,
        X / 255,
        y,
        task="multiclass",
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


def test_seconds_count_from_the_start_of_training(monkeypatch):
    # A clock that only the reporter moves: 5 s pass while each record is handed on.
    now = [1000.0]
    monkeypatch.setattr(training.time, "perf_counter", lambda: now[0])

    def reporter(record):
        now[0] += 5.0

    X, y = _blobs(n=30)
    params = model.init_params(784, 4, 3, seed=2)
    history = fit(params, X, y, task="multiclass", optimizer=make_optimizer("gd"), epochs=3,
                  lr=1e-5, on_epoch=reporter)  # fmt: skip
    assert history.column("seconds") == [0.0, 5.0, 10.0]


def test_divergence_stops_with_a_clear_error():
    X, y = _blobs()
    params = model.init_params(784, 16, 3, seed=2)
    with pytest.raises(DivergenceError, match="smaller learning rate") as caught:
        fit(params, X, y, task="multiclass", optimizer=make_optimizer("gd"), epochs=5, lr=1e306)
    # Library errors speak of the setting in words and name its key; the CLI adds the flag.
    assert caught.value.setting == "lr" and "--" not in str(caught.value)


@pytest.mark.parametrize("loss", [math.inf, math.nan, DIVERGED_LOSS * 1.001])
def test_check_loss_refuses_non_finite_and_exploded_losses(loss):
    with pytest.raises(DivergenceError, match="at epoch 4"):
        check_loss(loss, 4, 0.1)
    check_loss(DIVERGED_LOSS, 4, 0.1)  # the limit itself still passes


def test_a_blow_up_in_the_last_epoch_is_divergence():
    # The epoch's training loss judges the weights before its update; the test
    # loss judges the weights the update leaves, the ones that would be saved.
    X, y = _blobs(n_classes=2)
    params = model.init_params(784, 16, 1, seed=2)
    with pytest.raises(DivergenceError, match="epoch 1: the mean test loss reached"):
        fit(params, X, y, task="binary", optimizer=make_optimizer("gd"), epochs=1, lr=1e3,
            X_test=X, y_test=y)  # fmt: skip


def _sample_config(**options):
    return resolve_config("binary", {}, {"digits": (5, 8), "dataset": "mnist-sample", **options})


@pytest.mark.parametrize("options", [{"lr": 1e3}, {"weight_decay": 1e308}])
def test_run_training_refuses_final_weights_that_diverged(options, monkeypatch):
    # Both runs used to be saved as a success, with a loss of 2e6 and 3e301 per image.
    config = _sample_config(epochs=1, samples_per_class=50, hidden=8, **options)
    train, _, test = experiment.load_data(config)
    with pytest.raises(DivergenceError, match="epoch 1: the mean test loss"):
        experiment.run_training(config, train, test)
    # Without a test set the loop cannot see the last update; the final score does.
    real_fit = experiment.fit
    monkeypatch.setattr(experiment, "fit", lambda *a, X_test, y_test, **kw: real_fit(*a, **kw))
    with pytest.raises(DivergenceError, match="epoch 1: the mean train loss reached"):
        experiment.run_training(config, train, test)


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
        task="multiclass",
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
        fit(params, X, y, task="multiclass", optimizer=make_optimizer("gd"), epochs=1, lr=1e-5)


def test_sigmoid_used_by_reference_matches_ours():
    # The tanh form is exact to ~1e-16 absolute (losses never take its log).
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-12, atol=1e-16)


def test_an_exploding_but_finite_loss_is_divergence():
    X, y = _blobs()
    params = model.init_params(784, 16, 3, seed=2)
    with pytest.raises(DivergenceError, match="mean loss reached"):
        fit(params, X, y, task="multiclass", optimizer=make_optimizer("gd"), epochs=5, lr=1e6)


def test_ctrl_c_mid_epoch_hands_back_the_last_finished_epoch(monkeypatch):
    X, y = _blobs()
    one = model.init_params(784, 8, 3, seed=2)
    fit(one, X, y, task="multiclass", optimizer=make_optimizer("gd"), epochs=1, lr=1e-5,
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
    history = fit(interrupted, X, y, task="multiclass", optimizer=make_optimizer("gd"),
                  epochs=5, lr=1e-5, X_test=X, y_test=y)  # fmt: skip
    assert history.interrupted and len(history.records) == 1
    assert all(np.array_equal(one[k], interrupted[k]) for k in one)
