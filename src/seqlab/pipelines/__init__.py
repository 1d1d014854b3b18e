"""seqlab as a library: one pipeline per task, the same surface everywhere.

    import seqlab
    from seqlab.pipelines import Classifier
    clf = Classifier.fit("train.csv", epochs=3)     # fit(train, dev=None, config=None, out=None, **settings)
    clf.predict(["a fine film"]); clf.evaluate("test.csv"); clf.save("clf/")
    seqlab.load("clf/")                             # any checkpoint or exported file, through TASKS

Each pipeline's `Config` is a dataclass (model, data, train sections) with a JSON/YAML round trip;
`seqlab <task> train --config run.yaml` reads the same file.
"""

import importlib

from seqlab.pipelines.base import Pipeline
from seqlab.pipelines.config import Config, ConfigError
from seqlab.pipelines.registry import TASKS, load, register_task

# public name -> module (imported on first use, so `import seqlab.pipelines` stays light)
_LAZY = {
    "Classifier": "classify", "ClassifyConfig": "classify",
    "LM": "lm", "LMConfig": "lm",
    "Translator": "translate", "TranslateConfig": "translate",
    "QA": "qa", "QAConfig": "qa",
    "Tagger": "tag", "TagConfig": "tag",
    "Forecaster": "forecast", "ForecastConfig": "forecast",
    "MemoryTask": "memory", "MemoryConfig": "memory",
    "Recognizer": "speech", "SpeechConfig": "speech",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"seqlab.pipelines.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'seqlab.pipelines' has no attribute {name!r}")


__all__ = ["TASKS", "Config", "ConfigError", "Pipeline", "load", "register_task", *_LAZY]
