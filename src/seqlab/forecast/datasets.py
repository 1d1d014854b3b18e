"""Series that ship inside the statsmodels wheel (they load offline): `--data statsmodels:<name>`.

Each loader returns a DataFrame with a regular DatetimeIndex; `load` turns it into a TimeSeries
through the same checks as a CSV file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqlab.data.timeseries import TimeSeries, build_series, infer_freq
from seqlab.errors import UserError

PREFIX = "statsmodels:"


def _sm(name: str) -> pd.DataFrame:
    import statsmodels.api as sm

    return getattr(sm.datasets, name).load_pandas().data


def _co2() -> pd.DataFrame:
    weekly = _sm("co2")  # 2,284 weeks 1958-03..2001-12, 59 of them without a reading
    monthly = weekly.resample("MS").mean()
    return monthly.interpolate()


def _nile() -> pd.DataFrame:
    d = _sm("nile")
    return pd.DataFrame({"volume": d["volume"].to_numpy(float)},
                        index=pd.date_range(f"{int(d['year'].iloc[0])}-01-01", periods=len(d), freq="YS"))


def _elnino() -> pd.DataFrame:
    d = _sm("elnino")  # one row per year, one column per month
    temps = d.drop(columns="YEAR").to_numpy(float).reshape(-1)
    return pd.DataFrame({"temperature": temps},
                        index=pd.date_range(f"{int(d['YEAR'].iloc[0])}-01-01", periods=len(temps), freq="MS"))


def _sunspots() -> pd.DataFrame:
    d = _sm("sunspots")
    return pd.DataFrame({"SUNACTIVITY": d["SUNACTIVITY"].to_numpy(float)},
                        index=pd.date_range(f"{int(d['YEAR'].iloc[0])}-01-01", periods=len(d), freq="YS"))


def _macrodata() -> pd.DataFrame:
    d = _sm("macrodata")
    idx = pd.date_range(f"{int(d['year'].iloc[0])}-01-01", periods=len(d), freq="QS")
    return d.drop(columns=["year", "quarter"]).set_index(idx).astype(float)


# name -> (loader, default target, description)
DATASETS = {
    "co2": (_co2, "co2", "Mauna Loa CO2 (ppm), weekly readings 1958-2001 averaged to months"),
    "elnino": (_elnino, "temperature", "monthly sea-surface temperature (El Nino region), 1950-2010"),
    "nile": (_nile, "volume", "annual flow of the Nile at Aswan, 1871-1970"),
    "sunspots": (_sunspots, "SUNACTIVITY", "yearly sunspot activity, 1700-2008"),
    "macrodata": (_macrodata, "realgdp", "US quarterly macro data 1959-2009 (realgdp, realcons, realinv, cpi, "
                                         "unemp, ...; multivariate)"),
}


def is_package_data(spec: str) -> bool:
    return str(spec).startswith(PREFIX)


def load(spec: str, targets: str | list[str] | None = None, covariates: str | list[str] | None = None,
         season: int | None = None) -> TimeSeries:
    """`statsmodels:<name>` as a TimeSeries; targets/covariates pick columns (default: the dataset's own)."""
    name = spec[len(PREFIX):]
    if name not in DATASETS:
        raise UserError(f"unknown dataset {spec!r}; `seqlab forecast datasets` lists them: "
                        + ", ".join(PREFIX + k for k in DATASETS))
    loader, default, _ = DATASETS[name]
    df = loader()
    tnames = [t.strip() for t in (targets or default).split(",")] if isinstance(targets or default, str) else targets
    cnames = [c.strip() for c in covariates.split(",") if c.strip()] if isinstance(covariates, str) else \
        list(covariates or [])
    for c in tnames + cnames:
        if c not in df.columns:
            raise UserError(f"{spec} has no column {c!r}; its columns are {', '.join(map(repr, df.columns))}")
    vals = df[tnames].to_numpy(float)
    covs = df[cnames].to_numpy(float) if cnames else np.zeros((len(df), 0))
    return build_series(pd.DatetimeIndex(df.index), vals, covs, tnames, cnames, spec, season=season)


def describe() -> list[dict]:
    """One record per shipped series: name, length, frequency, span, columns, description."""
    rows = []
    for name, (loader, default, text) in DATASETS.items():
        df = loader()
        idx = df.index
        rows.append({"data": PREFIX + name, "steps": len(df), "freq": infer_freq(idx),
                     "start": idx[0].strftime("%Y-%m"), "end": idx[-1].strftime("%Y-%m"), "target": default,
                     "columns": list(df.columns), "about": text})
    return rows
