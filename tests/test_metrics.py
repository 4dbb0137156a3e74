"""Scores from labels: worked examples, edge cases and properties."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistnet import metrics

Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
Y_PRED = np.array([0, 1, 0, 1, 1, 2, 0, 2, 1])
CM = np.array(
    [
        [2, 1, 0],  # true 0: two right, one called 1
        [0, 2, 0],
        [1, 1, 2],
    ]
)


def test_accuracy():
    assert metrics.accuracy(Y_TRUE, Y_PRED) == pytest.approx(6 / 9)
    with pytest.raises(ValueError, match="zero samples"):
        metrics.accuracy([], [])
    with pytest.raises(ValueError, match="labels"):
        metrics.accuracy([0, 1], [0])


def test_confusion_matrix_rows_are_true_columns_predicted():
    cm = metrics.confusion_matrix(Y_TRUE, Y_PRED, 3)
    np.testing.assert_array_equal(cm, CM)
    assert metrics.confusion_matrix([1], [0], 2).tolist() == [[0, 0], [1, 0]]
    with pytest.raises(ValueError, match="outside 0..2"):
        metrics.confusion_matrix([0, 3], [0, 0], 3)


def test_precision_recall_f1_worked_example():
    precision, recall, f1, support = metrics.precision_recall_f1(CM)
    np.testing.assert_allclose(precision, [2 / 3, 2 / 4, 2 / 2])
    np.testing.assert_allclose(recall, [2 / 3, 2 / 2, 2 / 4])
    np.testing.assert_allclose(f1, [2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_array_equal(support, [3, 2, 4])


def test_class_never_predicted_or_absent_scores_zero_without_warnings():
    cm = np.array([[3, 0, 0], [2, 0, 0], [0, 0, 0]])  # class 1 never predicted, 2 absent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        precision, recall, f1, support = metrics.precision_recall_f1(cm)
    np.testing.assert_allclose(precision, [3 / 5, 0, 0])
    np.testing.assert_allclose(recall, [1, 0, 0])
    assert f1[1] == f1[2] == 0
    assert support.tolist() == [3, 2, 0]


def test_per_class_and_macro_average():
    rows = metrics.per_class(CM, [4, 7, 9], ["four", "seven", "nine"])
    assert [r["class"] for r in rows] == [4, 7, 9]
    assert rows[1] == {
        "class": 7,
        "name": "seven",
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert metrics.per_class(CM, [4, 7, 9])[0]["name"] == "4"
    avg = metrics.macro_average(CM)
    assert avg["recall"] == pytest.approx((2 / 3 + 1 + 0.5) / 3)


def test_top_confusions_most_frequent_first_ties_by_label():
    cm = np.array([[5, 0, 3], [3, 5, 1], [0, 7, 5]])
    assert metrics.top_confusions(cm, k=3) == [(2, 1, 7), (0, 2, 3), (1, 0, 3)]
    assert metrics.top_confusions(np.eye(3, dtype=int) * 4) == []  # the diagonal is not a mistake


def test_binary_counts_positive_is_label_1():
    # 5 vs 8: label 0 is 5, label 1 is 8. Two 8s called 5 are false negatives.
    y_true = [0, 0, 0, 1, 1, 1, 1]
    y_pred = [0, 0, 1, 1, 1, 0, 0]
    counts = metrics.binary_counts(metrics.confusion_matrix(y_true, y_pred, 2))
    assert counts == {"tp": 2, "tn": 2, "fp": 1, "fn": 2}
    with pytest.raises(ValueError, match="2x2"):
        metrics.binary_counts(np.zeros((3, 3)))


@settings(max_examples=50, deadline=None)
@given(
    st.integers(2, 10).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(
                st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=60
            ),
        )
    )
)
def test_scores_agree_with_each_other(case):
    k, pairs = case
    y_true, y_pred = (np.array(v) for v in zip(*pairs, strict=True))
    cm = metrics.confusion_matrix(y_true, y_pred, k)
    assert cm.sum() == len(y_true)
    assert np.trace(cm) / cm.sum() == pytest.approx(metrics.accuracy(y_true, y_pred))
    precision, recall, f1, support = metrics.precision_recall_f1(cm)
    for arr in (precision, recall, f1):
        assert np.all((arr >= 0) & (arr <= 1))
    # F1 is the harmonic mean: never above the larger of precision and recall.
    assert np.all(f1 <= np.maximum(precision, recall) + 1e-12)
    assert support.sum() == len(y_true)
