"""More than one core: how many threads a run uses, and how it uses them.

All of mnistnet's threading is here. The plain path, one thread, is
:func:`mnistnet.model.forward` and :func:`mnistnet.model.backward` as they
read; :class:`SplitNetwork` runs the same two passes with the hidden units
cut into slices, one slice per thread.

Why not OpenBLAS's own threads
------------------------------
OpenBLAS splits each matrix product among its threads, and its idle threads
spin, waiting for the next product. On the 2-core development machine a
training step at batch 32 to 128 is a few small products, and the measurements
of issue 12 showed what that costs: batch 32 more than twice slower with two
threads than with one, run times that swing with whatever else the machine
does, and two runs at once 3.5 times slower each (on 16 cores, four runs at
once with 16 threads each: 127 times slower). Only the large products of a
full batch gain from it, and only on an idle machine.

So every product mnistnet computes runs on one BLAS thread (threadpoolctl
sets it, :func:`network`), and mnistnet makes its own threads:

- :class:`Team` keeps ``threads - 1`` worker threads alive for the whole run.
  Handing them work costs two lock operations each, no pool submit; a waiting
  worker sleeps on its lock and takes no CPU, so runs that share the cores
  slow each other down in proportion instead of collapsing.
- :class:`SplitNetwork` gives each thread its slice of the hidden units: the
  columns of ``W1``, ``b1``, ``A1``, ``D1`` and the rows of ``W2``, and the
  same slices of their gradients. Every thread computes its slice's products
  and activations (NumPy releases the GIL in the products and the large
  elementwise operations); the only values that cross slices are the logits,
  summed from the slices' shares in a fixed order, and the output delta, which
  every slice reads. Results are byte-identical from run to run for the same
  seed and thread count. They differ from one thread's in the last bits,
  because a product cut in two rounds differently (``tests/test_parallel.py``
  checks them against the plain path to float tolerance).

The thread policy (``--threads auto``) is :func:`resolve_threads`.
"""

import contextlib
import functools
import os
import threading

import numpy as np
from threadpoolctl import ThreadpoolController

from mnistnet import model

# ``auto`` uses at most this many threads. On 16 cores one run alone is fastest
# with all 16 BLAS threads (0.36 s per epoch at batch 128, issue 12), but four
# runs at once with 4 threads each still took 0.47 s each: a cap of 4 leaves
# room for a few runs side by side without oversubscribing the machine.
AUTO_MAX_THREADS = 4
# A slice narrower than this many hidden units makes products too thin to pay
# for the hand-over (auto never cuts finer).
MIN_UNITS_PER_THREAD = 32
# Below this many (sample x hidden unit) pairs per step, a step is so short
# that handing the work over costs more than it saves: auto uses one thread.
# Measured on the 2-core development machine (2026-11-27, float32, momentum,
# 256 units; benchmarks/bench_training.py's alternating turns), seconds per
# epoch with 2 threads against 1: batch 8: 1.56x, 16: 1.30x, 32: 1.04x,
# 64: 0.83x, 128: 0.70x, 512: 0.59x, full batch of 4,000: 0.54x. A step
# costs the split about 160 microseconds more than its share of the work: two
# hand-overs and the GIL passed back and forth between the threads' NumPy calls.
MIN_SPLIT_WORK = 64 * 256


def available_cores():
    """The cores this process may run on (its CPU affinity, which containers and
    ``taskset`` restrict), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def resolve_threads(threads, batch_size, hidden, cores=None):
    """The number of threads a run uses.

    Parameters
    ----------
    threads : int or None
        The setting: a number, or None for ``auto``.
    batch_size : int
        Samples per step (the full batch's size for ``gd``).
    hidden : int
        Hidden units: no thread gets an empty slice.
    cores : int, optional
        The cores to plan for (default: :func:`available_cores`).

    ``auto`` is one thread per core, at most :data:`AUTO_MAX_THREADS` and at
    most one per :data:`MIN_UNITS_PER_THREAD` hidden units, and one thread
    for steps smaller than :data:`MIN_SPLIT_WORK`. A number is taken as it
    is, but never more threads than hidden units.

    >>> resolve_threads(None, 128, 256, cores=2)
    2
    >>> resolve_threads(None, 128, 256, cores=16), resolve_threads(None, 512, 64, cores=16)
    (4, 2)
    >>> resolve_threads(None, 32, 256, cores=2), resolve_threads(3, 32, 256, cores=2)
    (1, 3)
    """
    if threads is not None:
        return max(1, min(threads, hidden))
    if batch_size * hidden < MIN_SPLIT_WORK:
        return 1
    cores = available_cores() if cores is None else cores
    return max(1, min(cores, AUTO_MAX_THREADS, hidden // MIN_UNITS_PER_THREAD))


@functools.cache
def _blas_controller():
    # Made on first use: it looks up the BLAS libraries loaded (NumPy's), which
    # threadpool_limits would do on every call (half a millisecond).
    return ThreadpoolController()


def one_blas_thread():
    """A context manager: BLAS products on one thread inside it (entering costs ~10 us)."""
    return _blas_controller().limit(limits=1, user_api="blas")


@contextlib.contextmanager
def network(threads):
    """The network's passes for ``threads`` threads, with BLAS on one thread.

    Yields :mod:`mnistnet.model` itself for one thread (the plain path), or a
    :class:`SplitNetwork` whose threads stop when the block ends. Either one
    has ``forward`` and ``backward`` with the signatures of
    :func:`mnistnet.model.forward` and :func:`mnistnet.model.backward`, which
    is what :func:`mnistnet.training.fit` and :func:`mnistnet.training.score`
    call.
    """
    with one_blas_thread():
        if threads <= 1:
            yield model
            return
        with Team(threads) as team:
            yield SplitNetwork(team)


class _Worker:
    """A thread that runs ``fn(part)`` each time it is started, until stopped.

    Two locks, held while there is nothing to do, hand the work over: the
    cheapest wake-up CPython has (about 15 microseconds there and back).
    """

    def __init__(self, part):
        self.part = part
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._fn = None
        self._error = None
        self._busy = False
        self._thread = threading.Thread(target=self._loop, name=f"mnistnet-{part}", daemon=True)
        self._thread.start()

    def _loop(self):
        while True:
            self._go.acquire()
            if self._fn is None:
                return
            try:
                self._fn(self.part)
            except BaseException as exc:  # handed to the caller's thread by wait()
                self._error = exc
            self._done.release()

    def start(self, fn):
        self._fn = fn
        self._busy = True
        self._go.release()

    def wait(self):
        """Wait until the work started is done; return the exception it raised, if any."""
        if self._busy:
            self._done.acquire()  # Ctrl-C here leaves _busy set: stop() waits again
            self._busy = False
        error, self._error = self._error, None
        return error

    def stop(self):
        self.wait()
        self._fn = None
        self._go.release()
        self._thread.join()


class Team:
    """``size`` ways to run one function at once: ``run(fn)`` calls ``fn(0)`` on
    the calling thread and ``fn(1)``, ..., ``fn(size - 1)`` on persistent
    worker threads, and returns when all are done. Use it as a context manager
    (or call :meth:`close`) to stop the workers.
    """

    def __init__(self, size):
        self.size = size
        self._workers = [_Worker(part) for part in range(1, size)]

    def run(self, fn):
        for worker in self._workers:
            worker.start(fn)
        try:
            fn(0)
        finally:  # never leave a worker writing into buffers the caller reuses
            errors = [worker.wait() for worker in self._workers]
        for error in errors:
            if error is not None:
                raise error

    def close(self):
        for worker in self._workers:
            worker.stop()
        self._workers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def split_units(hidden, parts):
    """``parts`` consecutive slices of ``range(hidden)``, their sizes differing by at most one.

    >>> split_units(10, 3)
    [slice(0, 3, None), slice(3, 6, None), slice(6, 10, None)]
    """
    bounds = [hidden * k // parts for k in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _units(arrays, s):
    """The slice ``s`` of the hidden units: columns of ``W1``, entries of ``b1``, rows of ``W2``."""
    return {"W1": arrays["W1"][:, s], "b1": arrays["b1"][s], "W2": arrays["W2"][s]}


def _blocks(buffer, n, slices):
    """``buffer``'s first ``n`` rows (n, hidden) cut into one contiguous (n, width) block
    per slice, laid end to end in the same memory.

    A column slice of a row-major array is strided, and NumPy's elementwise
    operations on it take twice as long as on a block (measured: the sigmoid
    of half of 128 x 256 float32, 20 against 7 microseconds).
    """
    flat = buffer.reshape(-1)[: n * buffer.shape[1]]
    return [flat[n * s.start : n * s.stop].reshape(n, s.stop - s.start) for s in slices]


class SplitNetwork:
    """:func:`mnistnet.model.forward` and :func:`~mnistnet.model.backward`, the hidden
    units split among a :class:`Team`'s threads.

    Thread ``k`` owns the hidden units of slice ``k``: it reads their columns
    of ``W1`` and rows of ``W2``, and writes only their activations and deltas
    (blocks of the workspace's ``A1``, ``D1`` and ``work``), their gradients,
    and its share of the logits, so no two threads write the same memory. The
    calling thread alone computes what spans all units: the sum of the shares
    (always in slice order), the output activation and loss, the output delta
    and ``b2``'s gradient.
    """

    def __init__(self, team):
        self.team = team
        self._shares = np.empty((0, 0, 0))  # (parts, n, n_out): each slice's share of the logits

    def _slices(self, params):
        return split_units(params["W1"].shape[1], self.team.size)

    def _logit_shares(self, n, W2):
        shape = (self.team.size, n, W2.shape[1])
        if self._shares.dtype != W2.dtype or any(
            a < b for a, b in zip(self._shares.shape, shape, strict=True)
        ):
            self._shares = np.empty(shape, W2.dtype)
        return self._shares[:, :n, : shape[2]]

    def forward(self, params, X, task, ws=None, drop=None):
        """As :func:`mnistnet.model.forward`, but the cache's ``A1`` is the list of
        the slices' activations (one block each), which :meth:`backward` reads."""
        n = X.shape[0]
        ws = model.workspace_for(ws, params, n)
        slices = self._slices(params)
        A1 = _blocks(ws.A1, n, slices)
        shares = self._logit_shares(n, params["W2"])

        def part(k):
            mask = None if drop is None else drop.mask[:, slices[k]]
            model.hidden_layer(X, _units(params, slices[k]), out=A1[k], mask=mask)
            np.matmul(A1[k], params["W2"][slices[k]], out=shares[k])

        self.team.run(part)
        Z2 = np.sum(shares, axis=0, out=ws.Z2[:n])
        Z2 += params["b2"]
        return model.output_layer(X, A1, Z2, task, ws, drop)

    def backward(self, params, cache, Y, reduction="sum", weight_decay=0.0, scale=1.0):
        """As :func:`mnistnet.model.backward`; each thread computes its units' gradients."""
        ws = cache["ws"]
        X, A1 = cache["X"], cache["A1"]
        n = X.shape[0]
        g = ws.grads
        D2 = model.output_delta(cache, Y, reduction, scale)
        ones = ws.ones[:n]
        np.matmul(ones, D2, out=g["b2"])
        slices = self._slices(params)
        D1, work = _blocks(ws.D1, n, slices), _blocks(ws.work, n, slices)
        decay = model.decay_scale(reduction, n) * weight_decay * scale
        keep_prob = cache["keep_prob"]

        def part(k):
            units, grads = _units(params, slices[k]), _units(g, slices[k])
            model.hidden_grads(X, A1[k], D2, units, grads, D1[k], work[k], ones, decay, keep_prob)

        self.team.run(part)
        return g
