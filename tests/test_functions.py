"""Activations and losses: hand values, properties, stability at extremes."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mnistnet.functions import (
    binary_cross_entropy_from_logits,
    cross_entropy_from_stats,
    sigmoid,
    sigmoid_derivative_inplace,
    softmax,
    softmax_with_stats,
)

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


def test_sigmoid_hand_values():
    z = np.array([0.0, 2.0, -2.0])
    expected = [0.5, 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(2))]
    np.testing.assert_allclose(sigmoid(z), expected, rtol=1e-15)


@given(arrays(np.float64, st.integers(1, 50), elements=finite))
def test_sigmoid_is_symmetric(z):
    np.testing.assert_allclose(sigmoid(-z), 1 - sigmoid(z), atol=1e-15)


@given(arrays(np.float64, st.integers(1, 50), elements=finite))
def test_sigmoid_in_unit_interval(z):
    s = sigmoid(z)
    assert np.all((s >= 0) & (s <= 1))


def test_sigmoid_in_place_keeps_dtype():
    z = np.linspace(-5, 5, 11, dtype=np.float32)
    out = sigmoid(z, out=z)
    assert out is z and z.dtype == np.float32


def test_sigmoid_derivative_from_activation():
    z = np.linspace(-3, 3, 7)
    A = sigmoid(z)
    delta = np.full_like(z, 2.0)
    sigmoid_derivative_inplace(delta, A)
    np.testing.assert_allclose(delta, 2 * np.exp(-z) / (1 + np.exp(-z)) ** 2, rtol=1e-12)


@given(arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 12)), elements=finite))
def test_softmax_rows_sum_to_one(z):
    np.testing.assert_allclose(softmax(z).sum(axis=1), 1.0, rtol=1e-12)


@settings(max_examples=50)
@given(
    arrays(
        np.float64, st.tuples(st.integers(1, 8), st.integers(2, 12)), elements=st.floats(-50, 50)
    ),
    st.floats(-1e3, 1e3),
)
def test_softmax_ignores_a_constant_shift(z, c):
    np.testing.assert_allclose(softmax(z + c), softmax(z), atol=1e-12)


def test_softmax_shifts_each_row_by_its_own_maximum():
    # A global shift would underflow the second row to 0/0.
    z = np.array([[1000.0, 0.0], [-1000.0, -1001.0]])
    p = softmax(z)
    np.testing.assert_allclose(p[1], [1 / (1 + math.exp(-1)), 1 / (1 + math.exp(1))])


def test_binary_cross_entropy_hand_values():
    Z = np.array([[0.0], [2.0], [2.0]])
    Y = np.array([[1.0], [1.0], [0.0]])
    expected = [math.log(2), math.log(1 + math.exp(-2)), 2 + math.log(1 + math.exp(-2))]
    np.testing.assert_allclose(binary_cross_entropy_from_logits(Z, Y), expected, rtol=1e-14)


def _cross_entropy(Z, Y):
    """As the model computes it: from the row statistics of the softmax of Z."""
    _, row_max, log_norm = softmax_with_stats(Z)
    return cross_entropy_from_stats(Z, Y, row_max, log_norm)


def test_cross_entropy_hand_values():
    Z = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    Y = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    lse = math.log(math.exp(1) + math.exp(2) + math.exp(3))
    expected = [math.log(3), lse - 3]
    np.testing.assert_allclose(_cross_entropy(Z, Y), expected, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_give_finite_losses_and_no_warnings(dtype):
    Z = np.array([[1e4], [-1e4], [1e4], [-1e4]], dtype=dtype)
    Y = np.array([[1], [0], [0], [1]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = binary_cross_entropy_from_logits(Z, Y)
        np.testing.assert_allclose(loss, [0, 0, 1e4, 1e4], rtol=1e-6)
        assert set(sigmoid(Z)[:, 0]) == {0.0, 1.0}  # probabilities exactly 0 and 1, finite losses
        Z10 = np.array([[1e4, -1e4, 0], [-1e4, -1e4, -1e4]], dtype=dtype)
        Y10 = np.array([[0, 1, 0], [1, 0, 0]], dtype=dtype)
        ce = _cross_entropy(Z10, Y10)
        np.testing.assert_allclose(ce, [2e4, math.log(3)], rtol=1e-6)
        assert softmax(Z10)[0, 1] == 0.0


def test_raw_pixels_with_large_weights_raise_no_warning():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(20, 784)).astype(np.float64)
    W = rng.normal(0, 10, size=(784, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = X @ W  # logits of order 1e5
        assert np.all(np.isfinite(softmax(Z))) and np.all(np.isfinite(sigmoid(Z)))
