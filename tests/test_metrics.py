import numpy as np

from seqlab.metrics.classification import accuracy, confusion_matrix, format_confusion, macro_f1


def test_confusion_matrix_and_macro_f1_by_hand():
    y = [0, 0, 0, 1, 1, 2]
    p = [0, 1, 0, 1, 2, 2]
    cm = confusion_matrix(y, p, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # per class F1: c0 2*2/(2+3)=0.8, c1 2*1/(2+2)=0.5, c2 2*1/(2+1)=2/3
    assert np.isclose(macro_f1(y, p, 3), (0.8 + 0.5 + 2 / 3) / 3)
    assert np.isclose(accuracy(y, p), 4 / 6)


def test_macro_f1_ignores_classes_absent_from_both():
    assert macro_f1([0, 1], [0, 1], 5) == 1.0


def test_format_confusion_labels_rows_and_columns():
    text = format_confusion([[3, 1], [0, 4]], ["neg", "pos"])
    assert "neg" in text.splitlines()[1] and text.splitlines()[2].split() == ["pos", "0", "4"]
