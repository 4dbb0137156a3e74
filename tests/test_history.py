"""The history's forms: CSV with empty cells, JSON with nulls, the resume array with NaN."""

import numpy as np
import pytest

from mnistnet.errors import MnistnetError
from mnistnet.history import COLUMNS, EpochRecord, csv_text, from_array, read_csv, to_array

RECORDS = [
    EpochRecord(1, 0.9, 0.5, None, None, 0.8, 0.6, 0.25, 0.1),
    EpochRecord(2, 0.123456789, 0.75, None, None, 0.7, 0.7, 0.5, 0.05),
]


def test_csv_leaves_what_does_not_apply_empty(tmp_path):
    text = csv_text(RECORDS)
    assert text.splitlines() == [
        "epoch,loss,train_acc,val_loss,val_acc,test_loss,test_acc,seconds",
        "1,0.9,0.500000,,,0.8,0.600000,0.2500",
        "2,0.12345679,0.750000,,,0.7,0.700000,0.5000",
    ]
    path = tmp_path / "history.csv"
    path.write_text(text)
    columns = read_csv(path)
    assert columns["epoch"] == [1, 2] and columns["val_acc"] == [None, None]
    assert columns["test_acc"] == [0.6, 0.7]


def test_the_resume_array_gives_back_every_bit():
    array = to_array(RECORDS)
    assert array.shape == (2, len(COLUMNS)) and np.isnan(array[0, 3])
    assert from_array(array) == RECORDS
    assert to_array([]).shape == (0, len(COLUMNS)) and from_array(to_array([])) == []


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda a: a[:, :3], "is not a float64 table of 9 columns"),
        (lambda a: a.astype(np.float32), "is not a float64 table"),
        (lambda a: np.where(np.arange(9) == 1, np.nan, a), "row 1 has no finite loss"),
        (lambda a: np.where(np.arange(9) == 7, np.inf, a), "row 1 has no finite seconds"),
        (lambda a: a[::-1], "row 1 is epoch 2.0, not 1"),
    ],
)
def test_a_bad_resume_array_is_refused(change, message):
    with pytest.raises(ValueError, match=message):
        from_array(change(to_array(RECORDS)))


def test_read_csv_names_the_file_and_the_cell(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n1,abc\n")
    with pytest.raises(MnistnetError, match="history.csv: line 2: loss is not a number"):
        read_csv(path)
    path.write_text("no,epochs\n")
    with pytest.raises(MnistnetError, match="not a history.csv"):
        read_csv(path)
    with pytest.raises(MnistnetError, match="cannot read it"):
        read_csv(tmp_path / "missing.csv")
