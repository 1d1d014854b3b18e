"""Typed run configurations: dataclasses with a JSON/YAML round trip and validation that names the parameter.

A task's config has sections (model, data, train) whose fields carry their range or choices:

    @dataclass
    class ClassifyConfig(Config):
        model: ClassifyModel = field(default_factory=ClassifyModel)
        data: ClassifyData = field(default_factory=ClassifyData)
        train: TrainSettings = field(default_factory=TrainSettings)

    cfg = ClassifyConfig.from_dict(yaml.safe_load(open("run.yaml")))   # unknown keys, wrong types: ConfigError
    cfg = cfg.with_values(hidden=64, epochs=3)                           # flat names, as the CLI flags
    cfg.validate()                                                       # ranges: ConfigError("train.lr ...")

Leaf names are unique across a config's sections, so `with_values(lr=...)` and the CLI's `--lr` both
find `train.lr`; the CLI turns a ConfigError's parameter back into its flag.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from seqlab.errors import UserError


class ConfigError(UserError):
    """A config value that is missing, of the wrong type or out of range; `param` is its dotted name."""

    source: str | None = None

    def __init__(self, param: str, message: str):
        self.param, self.message = param, message
        super().__init__(f"{param} {message}")


def num(default, lo=None, hi=None, *, lo_open=False, hi_open=False, allow_none=False):
    """A numeric field with a closed range [lo, hi] (open ends where lo_open / hi_open)."""
    return field(default=default, metadata={"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open,
                                            "none": allow_none})


def choice(default, options, allow_none=False):
    return field(default=default, metadata={"choices": tuple(options), "none": allow_none})


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(s|sec|m|min|h|hr)?\s*$", re.I)


def duration(value, param: str = "train.time") -> float:
    """`parse_minutes` for a config field: a bad value is a ConfigError naming `param`."""
    try:
        return parse_minutes(value)
    except ValueError as e:
        raise ConfigError(param, str(e)) from None


def parse_minutes(value) -> float:
    """A duration in minutes from 15, 15.0, "15", "90s", "15m", "1.5h"; a bare number means minutes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration; write minutes (15), or 90s, 15m, 1.5h")
    x, unit = float(m.group(1)), (m.group(2) or "m").lower()
    return x / 60 if unit.startswith("s") else x * 60 if unit.startswith("h") else x


def _strip_optional(tp):
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else tp, True
    return tp, False


def _coerce(param: str, tp, value):
    """`value` as type `tp`, or ConfigError naming `param`."""
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(param, f"must be set (a {getattr(tp, '__name__', tp)})")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(param, f"must be a mapping of settings, not {type(value).__name__}")
        return tp.from_dict(value, prefix=param + ".")
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(param, f"must be a list, not {type(value).__name__}")
        (inner, *_) = typing.get_args(tp) or (object,)
        items = [_coerce(f"{param}[{i}]", inner, v) if inner is not object else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(param, f"must be true or false, not {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(param, f"must be a whole number, not {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value)  # "1e-3" from a YAML file that did not parse it as a number
        except (TypeError, ValueError):
            raise ConfigError(param, f"must be a number, not {value!r}") from None
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(param, f"must be a string, not {value!r}")
    return value


class Config:
    """Mixin of every config dataclass (sections included)."""

    # ---- dict / JSON / YAML ------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, prefix: str = ""):
        """Build from a (nested) dict; unknown keys and wrong types are ConfigErrors naming the key."""
        if not isinstance(d, dict):
            raise ConfigError(prefix.rstrip(".") or "config", f"must be a mapping, not {type(d).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(prefix + str(unknown[0]), f"is not a setting of {prefix.rstrip('.') or cls.__name__}; "
                              f"known: {', '.join(sorted(names))}")
        kw = {k: _coerce(prefix + k, hints[k], v) for k, v in d.items()}
        return cls(**kw)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    @classmethod
    def from_yaml(cls, text: str, source: str = "config"):
        import yaml

        try:
            d = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            where = f" line {e.problem_mark.line + 1}" if getattr(e, "problem_mark", None) else ""
            raise UserError(f"{source}:{where} is not valid YAML ({getattr(e, 'problem', e)})") from None
        d.pop("task", None) if isinstance(d, dict) else None
        try:
            return cls.from_dict(d)
        except ConfigError as e:
            err = ConfigError(e.param, f"{e.message} (in {source})")
            err.source = source  # a key of that file, not a flag: shown by its dotted name
            raise err from None

    @classmethod
    def read(cls, path: str | Path):
        """Read a run.yaml (or .json: JSON is YAML) written by a run or by hand."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise UserError(f"{path}: cannot read the config ({e.strerror}); give the run.yaml of a run") from None
        return cls.from_yaml(text, str(path))

    # ---- flat names (CLI flags, fit(**kwargs)) -----------------------------------------------
    @classmethod
    def leaf_names(cls) -> dict[str, str]:
        """{leaf name: dotted path} over all sections, e.g. {"lr": "train.lr", ...}."""
        out: dict[str, str] = {}
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp, _ = _strip_optional(hints[f.name])
            if dataclasses.is_dataclass(tp) and issubclass(tp, Config):
                out.update({k: f"{f.name}.{v}" for k, v in tp.leaf_names().items()})
            else:
                out[f.name] = f.name
        return out

    def get(self, dotted: str):
        obj = self
        for part in dotted.split("."):
            obj = getattr(obj, part)
        return obj

    def with_values(self, **values):
        """A copy with the named leaves replaced; an unknown name is a ConfigError."""
        leaves = self.leaf_names()
        d = self.to_dict()
        for k, v in values.items():
            if k not in leaves:
                close = [n for n in leaves if n.startswith(k[:3])]
                hint = f"; did you mean {', '.join(close[:3])}?" if close else ""
                raise ConfigError(k, f"is not a setting of {type(self).__name__}{hint}")
            *path, leaf = leaves[k].split(".")
            node = d
            for p in path:
                node = node[p]
            node[leaf] = v
        return type(self).from_dict(d)

    @classmethod
    def from_args(cls, ns, base=None):
        """From an argparse Namespace: every attribute named like a leaf; flags left at None keep `base`'s value."""
        base = base or cls()
        leaves = cls.leaf_names()
        given = {k: getattr(ns, k) for k in leaves if hasattr(ns, k)}
        return base.with_values(**{k: v for k, v in given.items() if v is not None or base.get(leaves[k]) is None})

    # ---- validation ---------------------------------------------------------------------------
    def validate(self, prefix: str = ""):
        """Check every field's range/choices (recursively); return self."""
        for f in dataclasses.fields(self):
            v, md, param = getattr(self, f.name), f.metadata, prefix + f.name
            if isinstance(v, Config):
                v.validate(param + ".")
                continue
            if v is None:
                continue
            if "choices" in md and v not in md["choices"]:
                raise ConfigError(param, f"must be one of {', '.join(map(str, md['choices']))}, not {v!r}")
            if "lo" in md and isinstance(v, (int, float)) and not isinstance(v, bool):
                _check_range(param, v, md)
        self.check()
        return self

    def check(self) -> None:
        """Checks across fields; a section overrides this."""


def _check_range(param: str, v, md) -> None:
    if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(param, f"must be a finite number, not {v}")
    lo, hi = md["lo"], md["hi"]
    bad_lo = lo is not None and (v <= lo if md["lo_open"] else v < lo)
    bad_hi = hi is not None and (v >= hi if md["hi_open"] else v > hi)
    if bad_lo or bad_hi:
        left = "(" if md["lo_open"] else "["
        right = ")" if md["hi_open"] else "]"
        if hi is None:
            want = f"greater than {lo}" if md["lo_open"] else f"at least {lo}"
        elif lo is None:
            want = f"below {hi}" if md["hi_open"] else f"at most {hi}"
        else:
            want = f"in {left}{lo}, {hi}{right}"
        raise ConfigError(param, f"must be {want}, not {v}")


__all__ = ["Config", "ConfigError", "choice", "dataclass", "field", "num", "parse_minutes"]
