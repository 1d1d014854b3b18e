import gzip

import pytest

from seqlab.data import read_lines, read_table
from seqlab.errors import UserError


def test_csv_columns_by_name_and_index(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text('text,label\n"hello, world",pos\nbye,neg\n')
    t = read_table(p, ["text", "label"])
    assert t.rows == [("hello, world", "pos"), ("bye", "neg")] and t.lines == [2, 3]
    assert read_table(p, ["-1", 0]).rows[0] == ("pos", "hello, world")


def test_tsv_keeps_bare_quotes_strips_spaces_and_reads_gzip(tmp_path):
    p = tmp_path / "d.tsv.gz"
    p.write_bytes(gzip.compress(b'sentence\tlabel\nhe said "hi" \t1\r\n'))
    assert read_table(p, ["sentence", "label"]).rows == [('he said "hi"', "1")]


def test_no_header_files_and_nel_is_not_a_line_break(tmp_path):
    p = tmp_path / "imdb.txt"
    p.write_text("a film\u0085 with a NEL\t1\nanother\t0\n")
    t = read_table(p, [0, 1], header=False)
    assert len(t.rows) == 2 and t.rows[0][0] == "a film\u0085 with a NEL"
    assert read_lines(p) == ["a film\u0085 with a NEL\t1", "another\t0"]


@pytest.mark.parametrize(
    "content, cols, match",
    [
        (None, ["text"], "no such file"),
        (b"", ["text"], "empty"),
        (b"  \n\n", ["text"], "empty"),
        (b"text,label\n", ["text"], "no data rows"),
        (b"text,label\nok,1\n", ["sentence"], "no column named 'sentence'; the columns are 'text', 'label'"),
        (b"text,label\nok,1\nbad,1,extra\n", ["text"], "line 3 has 3 fields but the first row has 2"),
        (b"text,label\nok,1\ncaf\xe9,1\n", ["text"], "line 3 is not valid utf-8 .*--encoding"),
        (b"a,b\n1,2\n", ["5"], "column index 5 is out of range"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, content, cols, match):
    p = tmp_path / "data.csv"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(UserError, match=match) as e:
        read_table(p, cols)
    assert str(p) in str(e.value)


def test_latin1_file_reads_with_its_encoding(tmp_path):
    p = tmp_path / "rt.txt"
    p.write_bytes("un film tr\xe8s \x85 beau\n".encode("latin-1"))
    with pytest.raises(UserError, match="latin-1"):
        read_lines(p)
    assert read_lines(p, encoding="latin-1") == ["un film tr\xe8s \x85 beau"]
