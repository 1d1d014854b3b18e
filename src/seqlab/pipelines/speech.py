"""Speech recognition as a library: WAV recordings in, transcripts out, with a recurrent acoustic model.

    from seqlab.pipelines import Recognizer
    rec = Recognizer.fit("fsdd/recordings", label_from_name="{label}_{speaker}_{index}", test_where="index<5",
                         spell_digits=True)          # or fit("train.csv") with path,transcript columns
    rec.predict(["7_jackson_0.wav"])                 # ['seven']
    rec.transcribe("clip.wav", beam=8)               # [{"text", "words": [{word, confidence, start, end}]}]
    rec.evaluate("test.csv")                         # {"accuracy", "wer", "cer", "n", ...}
    rec.save("asr/");  rec = Recognizer.load("asr/")

Two heads share the features and the recurrent encoder: `ctc` (the recogniser: CTC over characters, so
any word can be spelled, or over whole words with units='word') and `classify` (one label per clip,
the isolated-word baseline: seqlab's TextClassifier over the frames). A checkpoint holds the feature
settings, the normalisation statistics, the units and the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from seqlab.data import audio
from seqlab.data.audio_cache import FeatureCache, default_cache_dir
from seqlab.data.augment import FrameBatcher, spec_augment, vtlp_frames
from seqlab.data.utterances import AUDIO_SUFFIXES, copy_examples, list_utterances, normalise_text
from seqlab.decode import ctc as ctc_decode
from seqlab.errors import UserError
from seqlab.export import runtime
from seqlab.metrics.speech import speech_metrics
from seqlab.models.classifier import ClassifierConfig, TextClassifier
from seqlab.models.ctc import CTCAcousticModel, CTCConfig
from seqlab.pipelines.base import Pipeline, finish, run_training
from seqlab.pipelines.registry import register_task
from seqlab.pipelines.speech_config import (
    BLANK,
    HEADS,
    SpeechConfig,
    SpeechModel,
    decoding_default,
    read_items,
    sources,
)
from seqlab.train.checkpoint import task_meta
from seqlab.train.trainer import TrainConfig

__all__ = ["HEADS", "Recognizer", "SpeechConfig"]


def _build_model(m: SpeechModel, feat_dim: int, n_labels: int) -> torch.nn.Module:
    enc = m.encoder_config(0, 0, input_dim=feat_dim)
    if m.head == "classify":
        return TextClassifier(ClassifierConfig(enc, n_labels, m.pooling, m.dropout))
    mcfg = CTCConfig(enc, feat_dim, n_labels, m.frontend, m.stride, head_dropout=m.dropout)
    mcfg.encoder.input_dim = mcfg.encoder_input
    return CTCAcousticModel(mcfg)


@register_task
class Recognizer(Pipeline):
    """Features, units and an acoustic model: recordings in, transcripts out."""

    task = "speech"
    Config = SpeechConfig

    def __init__(self, units: list[str], model: torch.nn.Module, data: dict, config: SpeechConfig | None = None):
        self.units, self.model, self.data, self.config = units, model, data, config
        self.spec = audio.FeatureSpec(**data["spec"])
        cache = data.get("feature_cache")
        where = None if cache in ("none", "") else (cache or default_cache_dir())
        self.cache = FeatureCache(self.spec, where)

    @property
    def head(self) -> str:
        return self.data["head"]

    def text(self, transcript: str) -> str:
        return normalise_text(transcript, self.data["lowercase"], self.data["spell_digits"])

    def frames(self, items: list) -> list[torch.Tensor]:
        """Normalised (frames, dim) float tensors of audio items (paths or (wave, rate) pairs)."""
        raw = self.cache.get(list(items))
        return [audio.normalise(torch.from_numpy(f), self.data["normalize"], self.data.get("stats")) for f in raw]

    def encode_targets(self, texts: list[str]) -> list[torch.Tensor] | torch.Tensor:
        index = {u: i for i, u in enumerate(self.units)}
        if self.head == "classify":
            return torch.tensor([index.get(t, -100) for t in texts])
        toks = [list(t) if self.data["units"] == "char" else t.split() for t in texts]
        return [torch.tensor([index[c] for c in tk if c in index], dtype=torch.long) for tk in toks]

    # ---- training ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, train, dev=None, test=None, config: SpeechConfig | dict | str | None = None, *, out=None,
            resume: bool = False, overwrite: bool = False, callbacks=None, log=print, **overrides) -> Recognizer:
        """Train on `train` (a path,transcript CSV, a folder with label_from_name, or (items, transcripts)).

        test_where / test_speaker hold the matching recordings of `train` out as a test set (`test`: a
        further test source); without `dev`, a seeded dev_fraction of the rest is the dev set. The test
        figures (greedy and beam decoding) end up in `results`."""
        cfg = cls.make_config(config, **overrides)
        m, dc, tc = cfg.model, cfg.data, cfg.train
        tcfg = tc.trainer_config(30)
        items, raw, dev_items, dev_raw, tests = sources(train, dev, test, dc, tc)
        rate = dc.sample_rate or (audio.read_wav(items[0])[1] if isinstance(items[0], (str, Path)) else
                                  int(items[0][1]))
        spec = audio.FeatureSpec(rate, dc.feats, dc.n_mels, dc.n_mfcc, dc.win_ms, dc.hop_ms, dc.trim_db)
        data = {"spec": spec.to_json(), "head": m.head, "units": dc.units, "normalize": dc.normalize,
                "lowercase": dc.lowercase, "spell_digits": dc.spell_digits, "label_from_name": dc.label_from_name,
                "path_col": dc.path_col, "transcript_col": dc.transcript_col, "feature_cache": dc.feature_cache}
        texts = [normalise_text(t, dc.lowercase, dc.spell_digits) for t in raw]
        dev_texts = [normalise_text(t, dc.lowercase, dc.spell_digits) for t in dev_raw]
        if any(not t for t in texts):
            raise UserError("a training transcript is empty; every training recording needs one")
        if m.head == "classify":
            units = sorted(set(texts))
            if len(units) < 2:
                raise UserError(f"the training transcripts hold one label ({units[0]!r}); a classifier needs two")
        else:
            units = [BLANK] + sorted({c for t in texts for c in (t if dc.units == "char" else t.split())})
        data["words"] = sorted({w for t in texts for w in t.split()})
        data["decoding"], how = decoding_default(texts, dc.lexicon, m.head, dc.units)
        log(f"default decoding: {how} (eval and predict take --beam / --lexicon to choose)")
        pipe = cls(units, torch.nn.Identity(), data, cfg)
        log(f"reading and computing {spec.kind} features ({spec.dim} per {spec.hop_ms:g} ms frame at "
            f"{spec.sample_rate} Hz) of {len(items) + len(dev_items)} recordings")
        raw_frames = pipe.cache.get(items)
        if dc.normalize in ("global", "cmn"):
            data["stats"] = audio.global_stats([torch.from_numpy(f) for f in raw_frames], dc.normalize == "cmn")
        for speed in tc.speeds():
            log(f"speed perturbation: the training clips at speed {speed:g}")
        if tc.vtlp:  # the batches hold power spectra (frames, freq); each step warps the filterbank per clip
            log(f"vocal-tract-length perturbation: mel filterbanks warped by 1 +- {tc.vtlp:g} per clip and step")
            waves = [pipe.cache.wave(i) for i in items]
            x = audio.log_mel([torch.from_numpy(audio.perturb_speed(w, sp)) for sp in [1.0, *tc.speeds()]
                               for w in waves], spec, power=True)
        else:
            x = [audio.normalise(torch.from_numpy(f), dc.normalize, data.get("stats"))
                 for f in raw_frames + [f for sp in tc.speeds() for f in pipe.cache.get(items, sp)]]
        texts = texts * (1 + len(tc.speeds()))
        dev_x = pipe.frames(dev_items)
        torch.manual_seed(tc.seed)
        pipe.model = model = _build_model(m, spec.dim, len(units))
        targets = pipe.encode_targets(texts)
        if m.head == "ctc":
            need = [len(t) + sum(a == b for a, b in zip(t.tolist(), t.tolist()[1:])) for t in targets]
            short = sum(int(model.cfg.out_lengths(torch.tensor(len(f)))) < n for f, n in zip(x, need))
            if short:
                log(f"warning: {short} training clips have fewer frames than CTC needs for their transcript "
                    f"at stride {m.stride}; they add no loss (lower --stride)")
        batches = FrameBatcher(x, targets, tcfg.batch_size, 0, shuffle=True, seed=tc.seed)
        ctc_loss = torch.nn.CTCLoss(blank=0, zero_infinity=True)

        def step_fn(model, batch):
            feats = batch.ids if not tc.vtlp else vtlp_frames(batch.ids, batch.lengths, spec, tc.vtlp, dc.normalize,
                                                              data.get("stats"))
            feats = spec_augment(feats, batch.lengths, tc.time_masks, tc.time_mask_width, tc.freq_masks,
                                 tc.freq_mask_width)
            if m.head == "classify":
                return F.cross_entropy(model(feats, batch.lengths), batch.targets)
            logp, out_len = model(feats, batch.lengths)
            tgt_len = (batch.targets != 0).sum(1)
            return ctc_loss(logp.transpose(0, 1), batch.targets, out_len, tgt_len.cpu())

        dev_targets = pipe.encode_targets(dev_texts)

        def eval_fn(model):
            outs = pipe.outputs(dev_x)
            r = speech_metrics(dev_texts, pipe._decode(dev_x, 1, False, outs))  # greedy: the acoustic model's own
            return {k: r[k] for k in ("wer", "cer", "accuracy")} | {"loss": pipe.loss(outs, dev_targets)}

        n_params = sum(p.numel() for p in model.parameters())
        n_test = f"test {sum(len(t[0]) for t in tests)}, " if tests else ""
        what = "labels" if m.head == "classify" else f"{dc.units} units (with blank)"
        log(f"train {len(items)} recordings, dev {len(dev_items)}, {n_test}{m.head} head over {len(units)} {what}, "
            f"{m.cell} {m.layers}x{m.hidden}{' bidirectional' if m.bidirectional else ''}, {n_params:,} parameters")
        st = run_training(pipe, batches, step_fn, eval_fn, metric="wer", mode="min", out=out, resume=resume,
                          overwrite=overwrite, callbacks=callbacks, log=log, trainer_config=tcfg, tie=("loss", "min"))
        extra = {}
        for i, (t_items, t_raw) in enumerate(tests):
            name = "test" if i == 0 else f"test{i + 1}"
            ways = [(None, None, "")] + ([(1, False, "_greedy"), (8, False, "_beam")] if m.head == "ctc" else [])
            t_x, refs = pipe.frames(t_items), [pipe.text(t) for t in t_raw]
            t_outs = pipe.outputs(t_x)  # the acoustic model once; decoded three ways
            for beam, lexicon, tag in ways:  # the run's default decoding, greedy, beam 8 without a lexicon
                r = speech_metrics(refs, pipe._decode(t_x, beam, lexicon, t_outs))
                extra |= {f"{name}{tag}_{k}": r[k] for k in ("accuracy", "wer", "cer")}
            extra[f"{name}_n"] = len(t_items)
        finish(pipe, st, eval_fn(pipe.model), out, extra=extra)
        if out is not None:  # a few recordings to show on `seqlab serve`'s speech page
            copy_examples(tests[0][0] if tests else dev_items, Path(out) / "examples")
        return pipe

    # ---- inference -----------------------------------------------------------------------------
    @torch.no_grad()
    def outputs(self, x: list[torch.Tensor], batch_size: int = 64) -> list[np.ndarray]:
        """Per clip: CTC log-posteriors (frames', labels), or class log-probabilities (classes,)."""
        self.model.eval()
        out: list = [None] * len(x)
        for b in FrameBatcher(x, None, batch_size, 0):
            if self.head == "classify":
                res = torch.log_softmax(self.model(b.ids.to(self.device), b.lengths).float(), -1).cpu().numpy()
                for row, i in enumerate(b.index.tolist()):
                    out[i] = res[row]
            else:
                logp, lens = self.model(b.ids.to(self.device), b.lengths)
                logp = logp.cpu().numpy()
                for row, i in enumerate(b.index.tolist()):
                    out[i] = logp[row, : int(lens[row])]
        return out

    def loss(self, outs: list[np.ndarray], targets) -> float:
        """Mean CTC loss per label (or cross-entropy) of `outputs` against encoded targets."""
        if self.head == "classify":
            t = targets.tolist()
            return float(-np.mean([o[k] for o, k in zip(outs, t) if k >= 0] or [0.0]))
        total, n = 0.0, 0
        for o, t in zip(outs, targets):
            if len(t):
                total += float(F.ctc_loss(torch.from_numpy(o)[:, None], t[None], [len(o)], [len(t)], reduction="sum",
                                          zero_infinity=True))
                n += len(t)
        return total / max(n, 1)

    def _decode(self, x: list[torch.Tensor], beam: int | None = None, lexicon=None, outs=None) -> list[str]:
        return [r["text"] for r in self._transcripts(x, beam, lexicon, outs)]

    @property
    def decoding(self) -> dict:
        """The run's default decoding, {"beam", "lexicon"} (greedy for checkpoints from before it was chosen)."""
        return self.data.get("decoding") or {"beam": 1, "lexicon": None}

    def decoding_name(self, beam: int | None = None, lexicon=None) -> str:
        """How `beam` / `lexicon` (None: the run's default) decode: 'greedy', 'beam 8, lexicon train', ..."""
        if self.head == "classify":
            return "one label per recording"
        beam = self.decoding["beam"] if beam is None else beam
        lexicon = self.decoding["lexicon"] if lexicon is None else lexicon
        lex = lexicon not in (None, False, "none") and self.head == "ctc" and self.data["units"] == "char"
        if beam <= 1 and not lex:
            return "greedy"
        name = "train" if lexicon is True or lexicon == "train" else lexicon if isinstance(lexicon, str) else "given"
        return f"beam {max(beam, 8) if lex and beam <= 1 else beam}" + (f", lexicon {name}" if lex else "")

    def _lexicon(self, lexicon):
        """lexicon: None (the run's default), False or 'none' (no lexicon), True or 'train', or a word list."""
        lexicon = self.decoding["lexicon"] if lexicon is None else lexicon
        if lexicon in (False, "none") or lexicon is None or self.head == "classify" or self.data["units"] != "char":
            return None
        words = self.data["words"] if lexicon is True or lexicon == "train" else list(lexicon)
        return ctc_decode.Lexicon(words, self.units)

    def _transcripts(self, x: list[torch.Tensor], beam: int | None = None, lexicon=None, outs=None) -> list[dict]:
        """beam None: the run's default (with its lexicon); beam 1 and lexicon False: greedy."""
        beam = self.decoding["beam"] if beam is None else beam
        outs, lex = outs if outs is not None else self.outputs(x), self._lexicon(lexicon)
        frame_s = self.spec.hop / self.spec.sample_rate
        res = []
        for o, feats in zip(outs, x):
            if self.head == "classify":
                k = int(o.argmax())
                conf, dur = float(np.exp(o[k])), len(feats) * frame_s
                res.append({"text": self.units[k], "words": [{"word": w, "confidence": conf, "start": 0.0,
                                                              "end": round(dur, 3)} for w in self.units[k].split()]})
                continue
            if beam > 1 or lex is not None:  # a lexicon needs a beam to choose among the words: at least 8
                ids = ctc_decode.beam_search(o, beam if beam > 1 else 8, 0, lex)[0][0]
            else:
                ids = ctc_decode.greedy(o)
            step = frame_s * (self.model.cfg.stride if self.model.cfg.frontend != "none" else 1)
            res.append(ctc_decode.words(o, ids, self.units, step, " " if self.data["units"] == "char" else None))
        return res

    @torch.no_grad()
    def stream(self, path, chunk_s: float = 1.0):
        """Transcribe a long recording chunk by chunk, carrying the recurrent state from one chunk to the
        next (a unidirectional CTC model with global or no normalisation): yields {"end" (seconds read),
        "text" (the transcript so far), "new" (what this chunk added)}, then the final transcript's dict
        with its words (greedy decoding; the frames are exactly those of the whole recording)."""
        cfg = getattr(self.model, "cfg", None)
        if self.head != "ctc" or cfg.encoder.bidirectional or cfg.frontend == "conv":
            raise UserError("streaming needs a unidirectional CTC model without the conv front-end (train it with "
                            "--unidirectional); a bidirectional one reads each recording backwards too")
        if self.data["normalize"] in ("utterance", "cmn") or self.spec.trim_db > 0:
            raise UserError("streaming needs a model trained with --normalize global (or none) and --trim-db 0: "
                            "per-recording statistics and trimming need the whole recording first")
        self.model.eval()
        wave = audio.read_wav(path, self.spec.sample_rate)[0]
        total, step = self.spec.frames(len(wave)), cfg.stride if cfg.frontend == "stack" else 1
        per = max(step, round(chunk_s * self.spec.sample_rate / self.spec.hop / step) * step)
        state, outs, text = None, [], ""
        for start in range(0, total, per):
            n = min(per, total - start)
            x = audio.normalise(audio.chunk_frames(wave, start, n, self.spec), self.data["normalize"],
                                self.data.get("stats"))
            logp, _, state = self.model(x[None].to(self.device), None, state, return_state=True)
            outs.append(logp[0].cpu().numpy())
            ids = ctc_decode.greedy(np.concatenate(outs))
            now = " ".join(("" if self.data["units"] == "char" else " ").join(self.units[i] for i in ids).split())
            yield {"end": round((start + n) * self.spec.hop / self.spec.sample_rate, 3), "text": now,
                   "new": now[len(text):].strip() if now.startswith(text) else now}
            text = now
        yield self._transcripts([torch.zeros(total, 1)], 1, False, outs=[np.concatenate(outs)])[0]  # greedy

    @torch.no_grad()
    def inspect(self, path) -> dict:
        """One recording as the CTC model reads it: normalised frames (T, dim), the encoder's top-layer
        hidden states (T', dirs*hidden), log-posteriors (T', labels), the greedy labels with their aligned
        spans (in steps), units, text, and the seconds per frame and per encoder step."""
        if self.head != "ctc":
            raise UserError("the speech figure shows a CTC model's posteriors; this model classifies whole clips")
        if not isinstance(self.model, torch.nn.Module):
            raise UserError("the speech figure reads the encoder's hidden states, which an exported file does not "
                            "give; use the run's checkpoint directory")
        self.model.eval()
        x = self.frames([path])[0]
        h, _ = self.model.frontend(x[None].to(self.device), None)
        enc = self.model.encoder(h)
        logp = torch.log_softmax(self.model.out(enc.outputs).float(), -1)[0].cpu().numpy()
        ids = ctc_decode.greedy(logp)
        _, spans = ctc_decode.confidences(logp, ids)
        frame_s = self.spec.hop / self.spec.sample_rate
        step = self.model.cfg.stride if self.model.cfg.frontend != "none" else 1
        said = self._transcripts([x], outs=[logp])[0]
        return {"frames": x.numpy(), "hidden": enc.outputs[0].float().cpu().numpy(), "log_probs": logp,
                "labels": ids, "spans": spans, "units": self.units, "frame_s": frame_s, "step_s": frame_s * step,
                "text": said["text"], "words": said["words"], "directions": self.model.cfg.encoder.directions}

    def transcribe(self, audio_in, beam: int | None = None, lexicon=None) -> list[dict]:
        """{"text", "words": [{"word", "confidence", "start", "end" (seconds)}]} per recording of `audio_in`: a
        file, a folder, a list of paths or (wave, rate) pairs. beam None and lexicon None: the run's default
        decoding (`decoding`); beam > 1: prefix beam search, 1: greedy; lexicon: a word list (or True: the
        training words) that character decoding must spell, False: none."""
        if isinstance(audio_in, (str, Path)):
            audio_in = [u.path for u in list_utterances(audio_in, None, need_text=False)]
        return self._transcripts(self.frames(list(audio_in)), beam, lexicon)

    def predict(self, audio_in, beam: int | None = None, lexicon=None):
        """The transcript of each recording (one file path gives one string)."""
        single = isinstance(audio_in, (str, Path)) and Path(audio_in).suffix.lower() in AUDIO_SUFFIXES
        out = [r["text"] for r in self.transcribe(audio_in, beam, lexicon)]
        return out[0] if single else out

    def evaluate(self, data, beam: int | None = None, lexicon=None, where: str | None = None,
                 speaker: str | None = None, label_from_name: str | None = None) -> dict:
        """Accuracy (exact transcripts), WER, CER and n on `data` (as `fit`'s train), optionally only the
        recordings matching `where` / `speaker`; a folder's names are read with the training pattern."""
        d = dict(self.data) | ({"label_from_name": label_from_name} if label_from_name else {})
        items, raw, _ = read_items(data, d, "data", True, where, speaker)
        hyps = self._decode(self.frames(items), beam, lexicon)
        return speech_metrics([self.text(t) for t in raw], hyps)

    # ---- files ---------------------------------------------------------------------------------
    def meta(self, train_cfg=None) -> dict:
        tcfg = train_cfg or (self.config.train.trainer_config(30) if self.config else TrainConfig())
        mcfg = self.model.cfg.to_json() | {"head": self.head}
        return task_meta(self.task, mcfg, self.data, tcfg, {"units": self.units})

    @staticmethod
    def _build(m: dict) -> torch.nn.Module:
        m = dict(m)
        if m.pop("head", "ctc") == "classify":
            return TextClassifier(ClassifierConfig.from_json(m))
        return CTCAcousticModel(CTCConfig.from_json(m))

    @classmethod
    def graph_model(cls, cfg: dict) -> tuple[str, torch.nn.Module]:
        """The acoustic model for `seqlab export`: 'ctc' (frames -> log-posteriors) or 'classify' (frames -> logits)."""
        m = cfg["model"]
        return ("classify" if m.get("head") == "classify" else "ctc"), cls._build(m)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Recognizer:
        """Open a checkpoint directory (a run's --out, best/ or last/)."""
        cfg, v, model = runtime.load_model(path, cls.task, cls._build, device)
        if "units" not in v or "spec" not in cfg["data"]:
            raise UserError(f"{path}: the checkpoint's vocab.json or config.json is damaged; retrain, or restore it")
        return cls(v["units"], model, cfg["data"])
