"""The example notebooks run top to bottom on the data in ../shared (their own asserts must hold)."""

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SLOW = {"02_lm.ipynb", "03_translate.ipynb", "04_tag.ipynb", "05_forecast.ipynb", "06_qa.ipynb"}


def _params():
    for nb in sorted(EXAMPLES.glob("*.ipynb")):
        marks = [pytest.mark.slow] if nb.name in SLOW else []
        yield pytest.param(nb, id=nb.name, marks=marks)


@pytest.mark.parametrize("path", list(_params()))
def test_notebook_runs(path):
    if not SHARED.is_dir():
        pytest.skip("../shared/data is absent: the notebooks read the real datasets there")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
