"""Small user-reported slips: CSV quote lines, the LM's --help, '-0.000' entropy, forecast column names."""

import math

import pytest
import torch

from seqlab.cli import build_parser, main
from seqlab.data.readers import read_table
from seqlab.errors import UserError
from seqlab.pipelines.lm import LM, unigram_bits


@pytest.mark.parametrize("text, opened, until", [
    ('text,label\n"hello,pos\nworld,neg\n', 2, "the end of the file"),
    ('text,label\nok,pos\n"hello,pos\nworld,neg\nmore,neg\n', 3, "the end of the file"),
    ('text,label\nok,pos\n"hello,pos\nwor"ld,neg\nmore,neg\n', 3, "line 4"),
])
def test_an_unclosed_quote_is_reported_on_the_line_that_opened_it(tmp_path, text, opened, until):
    (tmp_path / "q.csv").write_text(text)
    with pytest.raises(UserError) as e:
        read_table(tmp_path / "q.csv", ["text", "label"])
    msg = str(e.value)
    assert f"line {opened} opens a quoted field" in msg and until in msg, msg


def test_quoted_fields_over_several_lines_and_one_line_errors_still_read_as_before(tmp_path):
    (tmp_path / "ok.csv").write_text('text,label\n"multi\nline",pos\nok,neg\n')
    t = read_table(tmp_path / "ok.csv", ["text", "label"])
    assert t.rows == [("multi\nline", "pos"), ("ok", "neg")] and t.lines == [3, 4]
    (tmp_path / "bad.csv").write_text('text,label\nok,neg\n"a"b,pos\n')
    with pytest.raises(UserError, match="line 3 is not valid CSV"):
        read_table(tmp_path / "bad.csv", ["text", "label"])


def _help(argv: list[str]) -> str:
    parser = build_parser()
    for name in argv:
        parser = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)
                      and name in a.choices).choices[name]
    return parser.format_help()


def test_lm_help_names_its_own_level_flag():
    text = " ".join(_help(["lm", "train"]).split())
    assert "--tokenizer" not in text
    assert "BPE vocabulary size for --level subword" in text
    assert "BPE vocabulary size for --tokenizer subword" in " ".join(_help(["classify", "train"]).split())


def test_unigram_entropy_of_a_single_token_type_is_zero_not_minus_zero():
    h = unigram_bits(torch.tensor([7, 7, 7, 7]))
    assert h == 0.0 and math.copysign(1.0, h) == 1.0 and f"{h:.3f}" == "0.000"
    lines = []
    LM.fit("a" * 400, valid="a" * 40, hidden=8, embed=8, epochs=1, batch=2, seq_len=8, save_every=0,
           log=lines.append)
    line = next(ln for ln in lines if "unigram entropy" in ln)
    assert "unigram entropy 0.000 bits/token" in line, line


def test_forecast_errors_name_columns_by_their_header(tmp_path, capsys):
    rows = "".join(f"2000-{m:02d},{m if m != 5 else 'x5'}\n" for m in range(1, 13))
    (tmp_path / "s.csv").write_text("month,passengers\n" + rows)
    assert main(["forecast", "train", "--data", str(tmp_path / "s.csv"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "'x5' in column 'passengers' is not a number" in err and "'1'" not in err, err
    (tmp_path / "t.csv").write_text("month,passengers\n2000-01,1\nsoon,2\n2000-03,3\n2000-04,4\n")
    assert main(["forecast", "train", "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "cannot read 'soon' in column 'month' as a date" in err and "'0'" not in err, err
