"""`seqlab speech train | eval | predict | connected`: flags -> SpeechConfig -> seqlab.pipelines.Recognizer -> print."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from seqlab.cli import common
from seqlab.data import audio
from seqlab.data.connected import make_connected
from seqlab.data.utterances import list_utterances, select
from seqlab.errors import UserError
from seqlab.models.classifier import POOLINGS
from seqlab.models.ctc import FRONTENDS
from seqlab.pipelines.speech import HEADS, Recognizer, SpeechConfig
from seqlab.pipelines.speech_config import LEXICONS


def _figures(r: dict, name: str) -> str:
    return f"accuracy {r[name + '_accuracy']:.4f}  WER {r[name + '_wer']:.4f}  CER {r[name + '_cer']:.4f}"


def cmd_train(a: argparse.Namespace) -> int:
    cfg = common.config_from_args(SpeechConfig, a)
    run = common.TrainRun(cfg, a.out)
    with run:
        pipe = Recognizer.fit(a.data, a.dev, a.test, cfg, out=a.out, resume=a.resume, overwrite=a.overwrite,
                              callbacks=run.callbacks())
    r = pipe.results
    print(f"best dev {_figures(r, 'dev')} (epoch {r['best_epoch']}), trained {r['train_seconds']:.0f}s; "
          f"model in {Path(a.out) / 'best'}")
    if "test_n" in r:
        which = " and ".join(x for x in (a.test_where and f"where {a.test_where}", a.test_speaker and
                                         f"speaker {a.test_speaker}", a.test and str(a.test)) if x)
        how = f"{pipe.decoding_name()}: " if pipe.head == "ctc" else ""
        print(f"test ({which}, {r['test_n']} recordings): {how}{_figures(r, 'test')}")
        for tag, name in (("test_greedy", "greedy"), ("test_beam", "beam 8, no lexicon")):
            if f"{tag}_wer" in r and name != pipe.decoding_name():
                print(f"test {name}: {_figures(r, tag)}")
    print(run.summary())
    return 0


def _lexicon(a: argparse.Namespace):
    """None: the run's default; False: none; True: the training words; or the words of a file."""
    if a.lexicon is None:
        return None
    if a.lexicon == "none":
        return False
    if a.lexicon == "train":
        return True
    from seqlab.data import read_lines

    return [w for line in read_lines(a.lexicon) for w in line.split()]


def cmd_eval(a: argparse.Namespace) -> int:
    pipe = Recognizer.load(a.model, a.device)
    with common.Heartbeat(f"evaluating {a.model} on {a.data}"):
        m = pipe.evaluate(a.data, a.beam, _lexicon(a), a.where, a.speaker, a.label_from_name)
    how = pipe.decoding_name(a.beam, a.lexicon)
    if a.json:
        print(json.dumps({"data": str(a.data), "decoding": how, **m}))
    else:
        sel = "".join(f" {k} {v}" for k, v in (("where", a.where), ("speaker", a.speaker)) if v)
        print(f"{a.data}{sel}: {m['n']} recordings  accuracy {m['accuracy']:.4f}  WER {m['wer']:.4f}  "
              f"CER {m['cer']:.4f}  ({how})")
    return 0


def cmd_stream(pipe: Recognizer, a: argparse.Namespace) -> int:
    for src in a.inputs:
        *parts, final = pipe.stream(src, a.chunk_s)
        for p in parts:
            if a.json:
                print(json.dumps({"path": src, **p}))
            elif p["new"]:
                print(f"{p['end']:8.2f}s  {p['new']}")
        words = "  ".join(f"{x['word']} {x['confidence']:.2f}" for x in final["words"]) or "(nothing)"
        print(json.dumps({"path": src, **final}) if a.json else f"{final['text']}\t({words})\t{src}")
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    pipe = Recognizer.load(a.model, a.device)
    if a.stream:
        return cmd_stream(pipe, a)
    items = []
    for src in a.inputs:
        items += [u.path for u in list_utterances(src, None, need_text=False)]
    if not items:
        raise UserError("nothing to transcribe: give WAV files or folders")
    res = pipe.transcribe(items, a.beam, _lexicon(a))
    if a.output:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["path", "transcript", "confidences"])
        for p, r in zip(items, res):
            w.writerow([p, r["text"], " ".join(f"{x['confidence']:.3f}" for x in r["words"])])
        common.write_text_atomic(a.output, buf.getvalue())
        print(f"wrote {len(items)} transcripts to {a.output}")
        return 0
    for p, r in zip(items, res):
        if a.json:
            print(json.dumps({"path": str(p), **r}))
        else:
            words = "  ".join(f"{x['word']} {x['confidence']:.2f}" for x in r["words"]) or "(nothing)"
            print(f"{r['text']}\t({words})\t{p}")
    return 0


def cmd_plot(a: argparse.Namespace) -> int:
    from seqlab.viz.speech_plot import plot_speech

    pipe = Recognizer.load(a.model, a.device)
    view = pipe.inspect(a.input)
    out = plot_speech(view, a.out, f"{Path(a.input).name}: decoded {view['text']!r}")
    print(f"{view['text']}\nwrote {out}")
    return 0


def _gap(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give MIN,MAX in milliseconds, e.g. 50,300, not {text!r}") from None
    return lo, hi


def cmd_connected(a: argparse.Namespace) -> int:
    utts = list_utterances(a.data, a.label_from_name)
    if a.where or a.speaker:
        utts = [u for u, m in zip(utts, select(utts, a.where, a.speaker)) if m]
    if not utts:
        raise UserError("no recording matches --where / --speaker")
    path = make_connected(utts, a.out, a.count, a.min_words, a.max_words, a.gap_ms, a.noise, a.seed,
                          a.sample_rate, log=print)
    print(f"wrote {a.count} utterances of {a.min_words}-{a.max_words} words from {len(utts)} clips: {path}")
    return 0


def _selection_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(f"--{prefix}where", default=None,
                   help="only recordings whose file-name field matches, e.g. 'index<5' or 'speaker==george'")
    p.add_argument(f"--{prefix}speaker", default=None, help="only the recordings of this speaker")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("speech", help="speech recognition from WAV files (CTC or whole-word classification)",
                       description="Train, evaluate and use a recurrent acoustic model on WAV recordings.")
    s = p.add_subparsers(dest="action", required=True, metavar="{train,eval,predict,plot,connected}")

    t = s.add_parser("train", help="train a recogniser on recordings and their transcripts")
    g = t.add_argument_group("recordings")
    g.add_argument("--data", required=True,
                   help="a CSV/TSV with path,transcript columns (paths relative to its folder), or a folder of "
                        "recordings with --label-from-name")
    g.add_argument("--dev", help="recordings for model selection; default: hold out --dev-fraction of --data")
    g.add_argument("--test", help="recordings to score the final model on (printed and in results.json)")
    g.add_argument("--dev-fraction", type=float, default=0.1, help="share of --data held out as dev")
    g.add_argument("--label-from-name", default=None,
                   help="read the transcript (and other fields) from file names, e.g. '{label}_{speaker}_{index}'")
    g.add_argument("--path-col", default="path", help="CSV column of the audio paths")
    g.add_argument("--transcript-col", default="transcript", help="CSV column of the transcripts")
    g.add_argument("--test-where", default=None,
                   help="hold out the --data recordings whose field matches as the test set, e.g. 'index<5'")
    g.add_argument("--test-speaker", default=None, help="hold out this speaker's recordings as the test set")
    g.add_argument("--units", choices=("char", "word"), default="char",
                   help="CTC output units: characters (any word can be spelled) or whole words")
    g.add_argument("--spell-digits", action="store_true", help="spell digits as words ('7' -> 'seven')")
    g.add_argument("--lowercase", action=argparse.BooleanOptionalAction, default=True,
                   help="lower-case the transcripts")
    f = t.add_argument_group("features")
    f.add_argument("--sample-rate", type=int, default=None, help="resample every recording to this rate "
                   "(default: the first training file's)")
    f.add_argument("--feats", choices=audio.KINDS, default="mfcc",
                   help="MFCCs or log-mel energies (default: %(default)s)")
    f.add_argument("--n-mels", type=int, default=40, help="mel channels")
    f.add_argument("--n-mfcc", type=int, default=13, help="cepstra kept with --feats mfcc")
    f.add_argument("--win-ms", type=float, default=25.0, help="analysis window (ms)")
    f.add_argument("--hop-ms", type=float, default=10.0, help="frame step (ms)")
    f.add_argument("--trim-db", type=float, default=40.0, help="cut leading and trailing audio more than this many "
                   "dB below the loudest 25 ms (0: keep all; default: %(default)s)")
    f.add_argument("--normalize", choices=audio.NORMALIZE, default="cmn",
                   help="feature standardisation: with the training statistics, per recording, each recording "
                        "less its own mean (cmn), or none (default: %(default)s)")
    f.add_argument("--feature-cache", default=None,
                   help="folder for cached features (default: $SEQLAB_CACHE or ~/.cache/seqlab/speech; 'none': off)")
    common.add_encoder_args(t, hidden=128)
    for act in t._actions:  # frames are not embedded
        if act.dest in ("embed", "embed_dropout"):
            act.help = argparse.SUPPRESS
    t.add_argument("--unidirectional", dest="bidirectional", action="store_false",
                   help="read each recording left to right only (the default reads both ways)")
    m = t.add_argument_group("acoustic model")
    m.add_argument("--head", choices=HEADS, default="ctc",
                   help="ctc: a recogniser of unit sequences; classify: one label per recording (the baseline)")
    m.add_argument("--frontend", choices=FRONTENDS, default="stack",
                   help="CTC: stack --stride frames into one, a strided convolution, or none")
    m.add_argument("--stride", type=int, default=3, help="CTC: frames per encoder step")
    m.add_argument("--pooling", choices=POOLINGS, default="mean", help="classify: how frames become one vector")
    m.add_argument("--lexicon", choices=LEXICONS, default="auto", help="the run's default decoding: auto = beam 8 "
                   "within the training words when they are a closed vocabulary (at most 1000 words, each said 3 "
                   "times or more), else greedy; train = always within them; none = greedy (default: %(default)s)")
    aug = t.add_argument_group("SpecAugment (training only)")
    aug.add_argument("--time-masks", type=int, default=2, help="frame stretches masked per recording")
    aug.add_argument("--time-mask-width", type=int, default=8, help="the longest masked stretch (frames)")
    aug.add_argument("--freq-masks", type=int, default=2, help="mel bands masked per recording")
    aug.add_argument("--freq-mask-width", type=int, default=6, help="the widest masked band (channels)")
    aug.add_argument("--speed-perturb", default="0.9,1.1", help="also train on every clip played at these speeds, "
                     "e.g. 0.9,1.1 (three times the data per epoch; '' for none; default: %(default)r)")
    aug.add_argument("--vtlp", type=float, default=0.1, help="vocal-tract-length perturbation: warp each clip's mel "
                     "filterbank by a random factor in 1 +- VTLP every step (0: off; default: %(default)s)")
    common.add_train_args(t, epochs=30, batch=32, schedule="cosine")
    common.apply_config_defaults(t, SpeechConfig)
    t.set_defaults(func=cmd_train)

    e = s.add_parser("eval", help="accuracy, WER and CER on recordings with transcripts")
    e.add_argument("--model", required=True, help="run directory (or checkpoint) of a recogniser")
    e.add_argument("--data", required=True, help="a path,transcript CSV, or a folder (names read with the training "
                   "--label-from-name, or --label-from-name)")
    e.add_argument("--label-from-name", default=None, help="file-name pattern (default: the training one)")
    _selection_args(e)
    _decoding_args(e)
    e.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    common.add_runtime_args(e)
    e.set_defaults(func=cmd_eval)

    r = s.add_parser("predict", help="transcribe WAV files, with per-word confidences")
    r.add_argument("inputs", nargs="+", help="WAV files or folders of them")
    r.add_argument("--model", required=True, help="run directory (or checkpoint) of a recogniser")
    _decoding_args(r)
    r.add_argument("--json", action="store_true", help="one JSON object per file (words with times)")
    r.add_argument("--output", help="write a CSV of path, transcript and word confidences here")
    r.add_argument("--stream", action="store_true", help="read each file chunk by chunk with the state carried, "
                   "printing words as they are recognised (a --unidirectional model with --normalize global)")
    r.add_argument("--chunk-s", type=float, default=1.0, help="--stream: seconds per chunk (default: %(default)s)")
    common.add_runtime_args(r)
    r.set_defaults(func=cmd_predict)

    f = s.add_parser("plot", help="a PNG of one recording: frames, CTC posteriors, alignment, hidden states (as "
                                  "`seqlab plot speech`)")
    f.add_argument("input", help="a WAV file")
    f.add_argument("--model", required=True, help="run directory (or checkpoint) of a CTC recogniser")
    f.add_argument("--out", required=True, help="the PNG to write")
    common.add_runtime_args(f)
    f.set_defaults(func=cmd_plot)

    c = s.add_parser("connected", help="build multi-word utterances (WAV + transcripts.csv) from isolated clips")
    c.add_argument("--data", required=True, help="a folder of clips (with --label-from-name) or a path,transcript CSV")
    c.add_argument("--label-from-name", default=None, help="file-name pattern, e.g. '{label}_{speaker}_{index}'")
    _selection_args(c)
    c.add_argument("--out", required=True, help="folder for the WAV files and transcripts.csv")
    c.add_argument("--count", type=int, default=500, help="utterances to make (default: %(default)s)")
    c.add_argument("--min-words", type=int, default=1, help="fewest words per utterance (default: %(default)s)")
    c.add_argument("--max-words", type=int, default=7, help="most words per utterance (default: %(default)s)")
    c.add_argument("--gap-ms", type=_gap, default=(50.0, 300.0), help="pause range MIN,MAX in ms (default: 50,300)")
    c.add_argument("--noise", type=float, default=0.0, help="white-noise std added (full scale 1; e.g. 0.003)")
    c.add_argument("--sample-rate", type=int, default=None, help="output rate (default: the first clip's)")
    c.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    c.set_defaults(func=cmd_connected)


def _decoding_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--beam", type=int, default=None, help="CTC prefix beam width; 1 = greedy (default: the run's "
                   "choice, printed at training: beam 8 with the training words for a closed vocabulary, else greedy)")
    p.add_argument("--lexicon", default=None,
                   help="spell only these words: 'train' (the training transcripts' words), a file of words, or "
                        "'none' (default: the run's choice)")
