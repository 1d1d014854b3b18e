"""`seqlab lm train | eval | generate`: flags -> LMConfig -> seqlab.pipelines.LM -> print.

The recipe (levels, stream batching with the state carried, the budget-sized defaults) is
documented in seqlab.pipelines.lm.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seqlab.cli import common
from seqlab.errors import UserError
from seqlab.pipelines.lm import (
    LM,
    LMConfig,
)

TASK = "lm"



def cmd_train(a: argparse.Namespace) -> int:
    cfg = common.config_from_args(LMConfig, a)
    run = common.TrainRun(cfg, a.out)
    with run:
        pipe = LM.fit(Path(a.data), Path(a.valid) if a.valid else None, cfg, out=a.out, resume=a.resume,
                      overwrite=a.overwrite, callbacks=run.callbacks())
    r, out = pipe.results, Path(a.out)
    print(f"best valid loss {r['valid_loss']:.4f} nats/token, perplexity {r['valid_perplexity']:.2f}, "
          f"{r['valid_bits_per_char']:.3f} bits/char (epoch {r['best_epoch']}), trained {r['train_seconds']:.0f}s; "
          f"model in {out / 'best'}")
    print(run.summary())
    return 0


def cmd_eval(a: argparse.Namespace) -> int:
    pipe = LM.load(a.model, a.device)
    if a.dynamic and (a.dynamic_lr < 0 or a.dynamic_segment < 1):
        raise UserError("--dynamic-lr must be >= 0 and --dynamic-segment at least 1")
    dynamic = (a.dynamic_segment, a.dynamic_lr) if a.dynamic else None
    if a.streams < 1 or a.max_tokens < 0:
        raise UserError("--streams must be at least 1 and --max-tokens at least 0 (0 = all)")
    with common.Heartbeat(f"scoring {a.data}"):
        m = pipe.evaluate(Path(a.data), str(a.data), dynamic, exact=a.exact, streams=a.streams,
                          max_tokens=a.max_tokens or None, encoding=a.encoding)
    how = ("dynamic evaluation" if dynamic else "one sequence" if a.exact or m["streams"] == 1
           else f"{m['streams']} parallel streams")
    if a.json:
        print(json.dumps({"data": str(a.data), **m}))
    else:
        print(f"{a.data}: {m['tokens']:,} tokens  loss {m['loss']:.4f} nats/token  perplexity "
              f"{m['perplexity']:.2f}  {m['bits_per_char']:.3f} bits/char  unknown {m['unk_rate']:.2%}  ({how})")
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    if not a.greedy and not a.temperature > 0:
        raise UserError(f"--temperature must be greater than 0, got {a.temperature}; use --greedy for argmax")
    if not 0 < a.top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {a.top_p}; 1 keeps every token")
    if a.top_k < 0 or a.length < 1 or a.num < 1:
        raise UserError("--top-k must be at least 0, and --length and --num at least 1")
    pipe = LM.load(a.model, a.device)
    kw = dict(length=a.length, temperature=a.temperature, top_k=a.top_k, top_p=a.top_p, seed=a.seed,
              greedy=a.greedy)
    if a.num == 1 and not pipe.backward:  # stream the sample as it is written
        pipe.encode_prime(a.prime)  # a bad prime fails before anything is printed
        sep = "" if pipe.level == "char" or not a.prime else " "
        sys.stdout.write(a.prime + sep)

        def write(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()

        pipe.generate(a.prime, **kw, on_token=write)
        sys.stdout.write("\n")
        return 0
    if a.num == 1:  # a backward LM: the text before the prime, whole once it is written
        print(pipe.generate(a.prime, **kw))
        return 0
    for k, text in enumerate(pipe.generate(a.prime, n=a.num, **kw)):
        print(f"=== sample {k + 1} ===\n{text}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lm", help="language models: train on a text, score texts, generate",
                       description="Train, evaluate and sample from a recurrent language model.")
    s = p.add_subparsers(dest="action", required=True, metavar="{train,eval,generate}")

    t = s.add_parser("train", help="train a language model on a plain-text file")
    t.add_argument("--data", required=True, help="training text (plain text, optionally .gz)")
    t.add_argument("--valid", help="validation text; default: the last --valid-fraction of --data")
    t.add_argument("--valid-fraction", dest="dev_fraction", metavar="VALID_FRACTION", type=float, default=0.1,
                   help="share at the end of --data held out when no --valid is given (default: %(default)s)")
    t.add_argument("--encoding", default="utf-8", help="text encoding of the files (default: %(default)s)")
    common.add_tokenizer_args(t, default="char", flag="--level", source="--data", max_len=False)
    t.add_argument("--seq-len", type=int, default=64,
                   help="tokens per stream per step; gradients flow back at most this far (default: %(default)s)")
    t.add_argument("--no-tie", action="store_true",
                   help="do not share the embedding and output weights (they are shared when --embed == --hidden)")
    common.add_encoder_args(t, auto={"hidden": "256, or 512 with --time of 10 minutes or more",
                                     "embed": "the same as --hidden, so the weights can be tied"})
    g = t.add_argument_group("AWD-LSTM regularisation (Merity et al. 2018; each off by default)")
    g.add_argument("--weight-drop", type=float, default=0.0,
                   help="DropConnect on the hidden-to-hidden weights, one mask per forward call (AWD: 0.5) "
                        "(default: %(default)s)")
    g.add_argument("--embed-row-dropout", type=float, default=0.0,
                   help="drop whole word types from the embedding matrix (AWD: 0.1) (default: %(default)s)")
    g.add_argument("--ar", type=float, default=0.0,
                   help="activation regularisation: AR * mean(dropped top-layer outputs²) (AWD: 2) "
                        "(default: %(default)s)")
    g.add_argument("--tar", type=float, default=0.0,
                   help="temporal activation regularisation: TAR * mean((h_t - h_{t-1})²) (AWD: 1) "
                        "(default: %(default)s)")
    g.add_argument("--average", type=float, default=0.0, metavar="DECAY",
                   help="evaluate (and keep as best/) an exponential moving average of the weights with this "
                        "decay, e.g. 0.999; 0 = off (default: %(default)s). With --locked-dropout the dropout on "
                        "the inputs (--embed-dropout), between layers (--dropout) and on the outputs is variational")
    t.add_argument("--init-from", metavar="LM_RUN", default=None,
                   help="continue this LM (a `seqlab lm train` run) on --data: its level, tokenizer, cell and sizes; "
                        "the vocabulary of --data, rows of tokens the LM knew copied, new ones at the mean embedding")
    t.add_argument("--backward", action="store_true",
                   help="read the text from its end to its start: a backward LM, which `classify train "
                        "--init-from-backward` pairs with a forward one (ULMFiT's bidirectional setup); eval reads "
                        "texts backward too, and generate writes the text that leads up to --prime")
    common.add_train_args(t, epochs=10, batch=32, lr=6e-3, schedule="cosine", amp="auto")
    t.add_argument("--sample-every", type=int, default=0, metavar="N",
                   help="print a short sample (200 characters, or 50 words) after every N-th evaluation, to watch "
                        "the model learn; 0 = never (default: %(default)s)")
    g = t.add_argument_group("large texts")
    g.add_argument("--cache", default=None, metavar="DIR",
                   help="directory of the token stores: a text is tokenized once into DIR and read from there by "
                        "every run on it with the same token settings (default: OUT/tokens, for files of 4 MB "
                        "or more)")
    g.add_argument("--valid-tokens", type=int, default=0, metavar="N",
                   help="score at most N held-out tokens per evaluation, sampled across the held-out text; 0 = "
                        "auto: all, or under --time as many as one CPU core scores in about 5%% of the budget "
                        "(at least 250,000; the same for the same settings) (default: %(default)s)")
    g.add_argument("--valid-streams", type=int, default=32, metavar="B",
                   help="score the held-out text as B parallel streams with the state carried (fewer for a short "
                        "text); `lm eval --exact` gives the one-sequence figure (default: %(default)s)")
    common.apply_config_defaults(t, LMConfig)
    t.set_defaults(func=cmd_train)

    e = s.add_parser("eval", help="loss, perplexity and bits per character on a text")
    e.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a language model")
    e.add_argument("--data", required=True, help="plain-text file to score (read streaming, never whole)")
    e.add_argument("--exact", action="store_true",
                   help="read the text as one sequence (batch 1), the exact figure; slower on a long text than "
                        "the default parallel streams, which differ by the context each stream starts without")
    e.add_argument("--streams", type=int, default=32, metavar="B",
                   help="parallel streams with the state carried (fewer for a short text) (default: %(default)s)")
    e.add_argument("--max-tokens", type=int, default=0, metavar="N",
                   help="score at most N tokens (sampled across the text by the streams); 0 = all "
                        "(default: %(default)s)")
    e.add_argument("--encoding", default=None, help="text encoding (default: as in training)")
    e.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    e.add_argument("--dynamic", action="store_true",
                   help="dynamic evaluation: after scoring each segment, take one RMSprop step on it, so the model "
                        "adapts to the text as it reads (Krause et al. 2018); not comparable with static loss")
    e.add_argument("--dynamic-lr", type=float, default=1e-3,
                   help="learning rate of the --dynamic updates (default: %(default)s)")
    e.add_argument("--dynamic-segment", type=int, default=50,
                   help="tokens scored between two --dynamic updates (default: %(default)s)")
    common.add_runtime_args(e)
    e.set_defaults(func=cmd_eval)

    g = s.add_parser("generate", help="write new text, continuing a prime")
    g.add_argument("--model", required=True, help="run directory (or checkpoint directory) of a language model")
    g.add_argument("--prime", default="", help="text to start from (default: the start of a line)")
    g.add_argument("--length", type=int, default=200, help="tokens to generate (default: %(default)s)")
    g.add_argument("--temperature", type=float, default=1.0,
                   help="> 0; below 1 safer and more repetitive, above 1 more random (default: %(default)s)")
    g.add_argument("--top-k", type=int, default=0,
                   help="sample among the k most likely tokens only; 0 = all (default: %(default)s)")
    g.add_argument("--top-p", type=float, default=1.0,
                   help="nucleus sampling: the fewest tokens with this much probability, in (0, 1] "
                        "(default: %(default)s)")
    g.add_argument("--greedy", action="store_true", help="always take the most likely token (no sampling)")
    g.add_argument("--num", type=int, default=1, help="samples, generated together as one batch (default: %(default)s)")
    g.add_argument("--seed", type=int, default=None, help="random seed for reproducible samples (default: random)")
    common.add_runtime_args(g)
    g.set_defaults(func=cmd_generate)
