import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEQLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))

torch.set_num_threads(1)


@pytest.fixture
def shared_data() -> Path:
    """The real datasets in ../shared/data; tests that need them skip where it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real datasets not found at {SHARED} "
                    "(set SEQLAB_SHARED_DATA or place ../shared beside the project)")
    return SHARED


@pytest.fixture(autouse=True)
def _network_alone_unless_asked(request, monkeypatch):
    """Forecasters in tests forecast with the network alone (the default combination with ETS, ARIMA and
    Theta refits classical models at every origin: seconds per fit); tests marked `combine` keep it."""
    if "combine" not in request.keywords:
        monkeypatch.setattr("seqlab.forecast.combine.COMBINE_BELOW", 0)
