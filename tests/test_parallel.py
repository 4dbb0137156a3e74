"""mnistnet.parallel: the thread policy, the worker team, and the hidden-unit split.

The split must compute what the plain passes compute (to float rounding: a
product cut in parts rounds differently), and give the same bits every time
for the same thread count.
"""

import threading
import time

import numpy as np
import pytest

from mnistnet import model, parallel
from mnistnet.augment import Distortion
from mnistnet.optimizers import make_optimizer
from mnistnet.training import fit, score

# --- the policy --------------------------------------------------------------------------


@pytest.mark.parametrize("cores", [1, 2, 3, 4, 8, 16, 64])
@pytest.mark.parametrize("batch", [1, 16, 32, 128, 512, 60000])
@pytest.mark.parametrize("hidden", [1, 16, 64, 256, 1024])
def test_auto_never_oversubscribes_and_keeps_small_steps_on_one_thread(cores, batch, hidden):
    threads = parallel.resolve_threads(None, batch, hidden, cores=cores)
    assert 1 <= threads <= min(cores, parallel.AUTO_MAX_THREADS)
    assert threads == 1 or hidden // threads >= parallel.MIN_UNITS_PER_THREAD
    if batch * hidden < parallel.MIN_SPLIT_WORK:
        assert threads == 1


def test_auto_uses_every_core_up_to_the_cap_for_steps_worth_splitting():
    assert parallel.resolve_threads(None, 128, 256, cores=2) == 2
    assert parallel.resolve_threads(None, 64, 256, cores=16) == parallel.AUTO_MAX_THREADS
    assert parallel.resolve_threads(None, 32, 256, cores=16) == 1  # measured: no gain
    assert parallel.resolve_threads(None, 2000, 256, cores=1) == 1


def test_a_number_of_threads_is_taken_as_given_but_never_above_the_hidden_units():
    assert parallel.resolve_threads(3, 4, 256, cores=1) == 3
    assert parallel.resolve_threads(8, 128, 5, cores=2) == 5


def test_the_cores_are_those_this_process_may_run_on(monkeypatch):
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert parallel.available_cores() == 3
    assert parallel.resolve_threads(None, 128, 256) == 3


def test_split_units_covers_every_unit_once_in_order():
    for hidden in (1, 7, 10, 256):
        for parts in range(1, min(hidden, 5) + 1):
            slices = parallel.split_units(hidden, parts)
            units = [u for s in slices for u in range(hidden)[s]]
            assert units == list(range(hidden))
            sizes = [s.stop - s.start for s in slices]
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


# --- the team ----------------------------------------------------------------------------


def test_team_runs_each_part_once_on_its_own_thread_and_stops_them():
    before = threading.active_count()
    seen = {}
    with parallel.Team(3) as team:
        assert threading.active_count() == before + 2
        for _ in range(50):
            seen.clear()
            team.run(lambda k: seen.__setitem__(k, threading.get_ident()))
            assert sorted(seen) == [0, 1, 2]
            assert len(set(seen.values())) == 3
            assert seen[0] == threading.get_ident()
    assert threading.active_count() == before


def test_an_error_in_a_worker_reaches_the_caller_after_every_part_finished():
    finished = []

    def work(k):
        if k == 1:
            raise ValueError("part 1 failed")
        finished.append(k)

    with parallel.Team(3) as team:
        with pytest.raises(ValueError, match="part 1 failed"):
            team.run(work)
        assert sorted(finished) == [0, 2]
        team.run(lambda k: finished.append(10 + k))  # the team still works
    assert sorted(finished) == [0, 2, 10, 11, 12]


def test_an_interrupt_in_the_calling_thread_waits_for_the_workers():
    finished = []

    def work(k):
        if k == 0:
            raise KeyboardInterrupt
        time.sleep(0.05)  # still busy when part 0 stops
        finished.append(k)

    team = parallel.Team(2)
    with pytest.raises(KeyboardInterrupt):
        team.run(work)
    assert finished == [1]  # run() let the interrupt go on only once the worker was done
    team.close()


# --- the split computes what the plain passes compute ------------------------------------


def _network(task, hidden, dtype, seed=0, n=37):
    rng = np.random.default_rng(seed)
    n_out = 1 if task == "binary" else 10
    params = model.init_params(784, hidden, n_out, method="xavier", seed=seed, dtype=dtype)
    params["b1"][...] = rng.normal(0, 0.1, hidden)
    params["b2"][...] = rng.normal(0, 0.1, n_out)
    X = rng.random((n, 784)).astype(dtype)
    y = rng.integers(0, n_out if n_out > 1 else 2, n)
    Y = (y[:, None] == np.arange(n_out)).astype(dtype) if n_out > 1 else y[:, None].astype(dtype)
    return params, X, Y


def _passes(net, params, X, Y, task, reduction, weight_decay, scale):
    ws = model.Workspace(params, len(X) + 3)
    P, cache = net.forward(params, X, task, ws)
    loss = model.loss(cache, Y, task).copy()
    grads = net.backward(params, cache, Y, reduction, weight_decay, scale)
    return P.copy(), loss, {k: v.copy() for k, v in grads.items()}


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("reduction,weight_decay,scale", [("sum", 0.0, 1.0), ("mean", 0.01, 0.1)])
@pytest.mark.parametrize("threads,hidden", [(2, 16), (3, 7), (4, 64)])
def test_split_passes_equal_the_plain_passes(task, reduction, weight_decay, scale, threads, hidden):
    params, X, Y = _network(task, hidden, np.float64)
    plain = _passes(model, params, X, Y, task, reduction, weight_decay, scale)
    with parallel.network(threads) as net:
        assert isinstance(net, parallel.SplitNetwork)
        split = _passes(net, params, X, Y, task, reduction, weight_decay, scale)
    np.testing.assert_allclose(split[0], plain[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(split[1], plain[1], rtol=1e-12, atol=1e-14)
    for name in model.PARAM_NAMES:
        np.testing.assert_allclose(split[2][name], plain[2][name], rtol=1e-10, atol=1e-13)


def test_one_thread_is_the_plain_model():
    with parallel.network(1) as net:
        assert net is model


def _train(threads, dtype=np.float32, **overrides):
    params, X, _ = _network("multiclass", 64, dtype, n=300)
    y = np.arange(300) % 10
    settings = dict(task="multiclass", optimizer=make_optimizer("momentum"), epochs=2, lr=0.1,
                    batch_size=32, reduction="mean", weight_decay=1e-3)  # fmt: skip
    settings.update(overrides)
    with parallel.network(threads) as net:
        history = fit(params, X, y, rng=np.random.default_rng(1), X_test=X[:50], y_test=y[:50],
                      net=net, **settings)  # fmt: skip
        test = score(params, X, y, "multiclass", batch_size=64, net=net)
    return params, history, test


@pytest.mark.parametrize("threads", [2, 3])
def test_training_on_threads_repeats_its_bits_and_matches_one_thread(threads):
    first, history, test = _train(threads)
    again, history_again, test_again = _train(threads)
    for name in model.PARAM_NAMES:
        assert first[name].tobytes() == again[name].tobytes()
    assert history.column("loss") == history_again.column("loss")
    assert test[:2] == test_again[:2]
    plain, plain_history, plain_test = _train(1)
    for name in model.PARAM_NAMES:
        np.testing.assert_allclose(first[name], plain[name], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(history.column("loss"), plain_history.column("loss"), rtol=1e-5)
    assert history.column("test_acc") == plain_history.column("test_acc")
    np.testing.assert_allclose(test[0], plain_test[0], rtol=1e-5)


def test_adam_and_full_batch_on_threads_match_one_thread():
    kwargs = dict(optimizer=make_optimizer("adam"), lr=1e-3, batch_size=None, epochs=3)
    split, _, _ = _train(2, dtype=np.float64, **kwargs)
    kwargs["optimizer"] = make_optimizer("adam")
    plain, _, _ = _train(1, dtype=np.float64, **kwargs)
    for name in model.PARAM_NAMES:
        np.testing.assert_allclose(split[name], plain[name], rtol=1e-9, atol=1e-12)


def test_per_example_decay_on_threads_matches_one_thread():
    kwargs = dict(reduction="example", lr=2e-3, weight_decay=0.05)
    split, _, _ = _train(2, np.float64, **kwargs)
    plain, _, _ = _train(1, np.float64, **kwargs)
    for name in model.PARAM_NAMES:
        np.testing.assert_allclose(split[name], plain[name], rtol=1e-9, atol=1e-12)
    once, _, _ = _train(1, np.float64, reduction="sum", lr=2e-3, weight_decay=0.05)
    assert not np.allclose(once["W1"], plain["W1"])  # the decay per example changed the run


def test_the_recipes_ingredients_on_threads_match_one_thread():
    # nesterov, warmup and one-cycle, shifts and distortions, label smoothing, dropout
    # (each thread masks its slice of the units) and the moving average: the split
    # computes the same run
    kwargs = dict(lr=0.5, lr_schedule="onecycle", warmup_epochs=0.5, augment_shift=1,
                  distortion=Distortion(rotate=10, scale=0.1, elastic_alpha=8),
                  label_smoothing=0.1, dropout=0.2, ema=0.9)  # fmt: skip
    split, split_history, _ = _train(2, np.float64, optimizer=make_optimizer("nesterov"), **kwargs)
    plain, history, _ = _train(1, np.float64, optimizer=make_optimizer("nesterov"), **kwargs)
    for name in model.PARAM_NAMES:
        np.testing.assert_allclose(split[name], plain[name], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(split_history.column("test_loss"), history.column("test_loss"))
    bare, _, _ = _train(1, np.float64, optimizer=make_optimizer("nesterov"), lr=0.5)
    assert not np.allclose(bare["W2"], plain["W2"])  # the ingredients changed the run


def test_products_run_on_one_blas_thread_in_training_scoring_and_prediction(monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    seen = []
    real_forward = model.forward

    def forward(*args, **kwargs):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", forward)
    params, X, _ = _network("multiclass", 8, np.float64, n=40)
    y = np.arange(40) % 10
    with threadpool_limits(2):  # what OpenBLAS would take on a 2-core machine
        with parallel.network(1) as net:
            fit(params, X, y, task="multiclass", optimizer=make_optimizer("sgd"), epochs=1,
                lr=0.1, batch_size=8, X_test=X, y_test=y, net=net)  # fmt: skip
            score(params, X, y, "multiclass", net=net)
        model.predict_proba(params, X, "multiclass")
        outside = {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    assert len(seen) == 5 + 1 + 1 + 1  # the batches, the test set, score, predict_proba
    assert all(threads == {1} for threads in seen)
    assert outside == {2}  # and back as it was
