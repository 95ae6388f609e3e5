"""Train the reader's judge: `python -m index.learn.judge --eval ../shared/eval`.

The judge is a cross-encoder: it reads the question and a sentence (in its context, as
`reader_text` gives it) together, and scores the pair. At answer time it scores the
`JUDGED` sentences sharing most words with the question (`index.models.reader.overlap`),
and its scores choose the quote and set the confidence. An experiment, not shipped:
docs/reader.md says how it fared.

Data: the reader's own (`index.learn.reader_data`; no question of rtqa-dev or of the
natural dev split is read). Each training question's negatives are the sentences the
trained bi-encoder ranks highest among those not holding the answer (the hard ones),
plus a few at random. Uncovered rtqa-train questions
not kept for calibration train too, with negatives only.

Training starts from the bi-encoder's layers, and so does the score: the cosine of the
mean of the question's tokens with the mean of the sentence's, read together (each attends
to the other), scaled and shifted by a learned head. Each step's loss is a softmax over
each question's group (its positive must win) plus a pointwise logistic loss on every pair
(a score means the same from one question to the next, so the calibration can read it).
Then the calibration is fitted again as `index.learn.reader` fits it, on the judge's
scores.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import NewsbotError
from index.learn.reader import calibrate, code_commit, needed_files, progress, trained_layers
from index.learn.reader_data import (
    NATURAL_HELD_OUT,
    SEED,
    Candidates,
    Item,
    fill,
    load_articles,
    load_questions,
    load_uncovered_training,
)
from index.models.embeddings import bundled_model_path
from index.models.reader import (
    CARD,
    JUDGE_WEIGHTS,
    PAIR_TOKENS,
    READER_DIR,
    WEIGHTS,
    Reader,
    judge_logits,
)

SCORED_NEGATIVES = 24  # the bi-encoder ranks this many of a question's negatives


@dataclass(frozen=True)
class Schedule:
    minutes: float = 60.0
    epochs: float = 2.0
    batch: int = 12  # questions per step
    group: int = 8  # sentences per question: one positive and the rest negatives
    lr: float = 4e-5
    head_lr: float = 1e-2
    pointwise: float = 0.5  # weight of the pointwise loss beside the softmax


def rank_negatives(items: list[Item], reader: Reader, log: Any) -> None:
    """Order each item's negatives by the bi-encoder's score, best first."""
    start = time.monotonic()
    for n, it in enumerate(items):
        head = it.negatives[:SCORED_NEGATIVES]
        if not head:
            continue
        scores = reader.scores(it.question, [c.text for c in head])
        order = np.argsort(-scores)
        it.negatives = [head[i] for i in order] + it.negatives[SCORED_NEGATIVES:]
        if n % 500 == 0:
            log(f"ranked negatives of {n}/{len(items)} ({(time.monotonic() - start) / 60:.1f} min)")


def _group(it: Item, size: int, rng: random.Random) -> list[str]:
    """One positive (when the item has one) then negatives: most from the bi-encoder's best,
    the rest at random."""
    texts = [rng.choice(it.positives).text] if it.positives else []
    want = size - len(texts)
    hard = it.negatives[: max(want, 8)]
    picked = rng.sample(hard, min(len(hard), want - 2 if len(it.negatives) > len(hard) else want))
    rest = [c for c in it.negatives if c not in picked]
    picked += rng.sample(rest, min(len(rest), want - len(picked)))
    return texts + [c.text for c in picked]


def train(
    items: list[Item],
    negatives_only: list[Item],
    reader_dir: Path,
    out: Path,
    s: Schedule,
    log: Any,
) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    base = str(bundled_model_path())
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModel.from_pretrained(base)
    layers = load_file(str(reader_dir / WEIGHTS))
    model.load_state_dict({k: v.float() for k, v in layers.items()}, strict=False)
    model.embeddings.word_embeddings.weight.requires_grad_(False)
    # The bi-encoder's own scale: softmax over 20 × cosine, as it was trained.
    head = torch.nn.Linear(1, 1)
    torch.nn.init.constant_(head.weight, 20.0)
    torch.nn.init.constant_(head.bias, -10.0)
    model.train()
    body = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": s.lr}, {"params": head.parameters(), "lr": s.head_lr}],
        weight_decay=0.01,
    )
    usable = [it for it in items if it.positives and len(it.negatives) >= s.group - 1]
    spare = [it for it in negatives_only if len(it.negatives) >= s.group]
    epoch_items = usable + [it for it in usable if it.source == "natural"] + spare
    steps = int(s.epochs * len(epoch_items) / s.batch)
    warm = max(1, steps // 10)
    base_lrs = [s.lr, s.head_lr]

    def set_lr(step: int) -> None:
        f = min(1.0, (step + 1) / warm) * max(0.0, (steps - step) / max(1, steps - warm))
        for g, lr in zip(opt.param_groups, base_lrs, strict=True):
            g["lr"] = lr * f

    start = time.monotonic()
    queue: list[Item] = []
    losses: list[float] = []
    done = 0
    for step in range(steps):
        if time.monotonic() - start > s.minutes * 60:
            log(f"time limit at step {step} of {steps}")
            break
        if len(queue) < s.batch:
            more = list(epoch_items)
            rng.shuffle(more)
            queue += more
        batch, queue = queue[: s.batch], queue[s.batch :]
        questions: list[str] = []
        texts: list[str] = []
        labels: list[float] = []
        softmax_rows: list[int] = []
        for n, it in enumerate(batch):
            group = _group(it, s.group, rng)
            group = (group + group[-1:] * s.group)[: s.group]  # pad a short group by repeating
            questions += [it.question] * s.group
            texts += group
            labels += [1.0 if it.positives and k == 0 else 0.0 for k in range(s.group)]
            if it.positives:
                softmax_rows.append(n)
        enc = tokenizer(
            questions,
            texts,
            padding=True,
            truncation="only_second",
            max_length=PAIR_TOKENS,
            return_tensors="pt",
        )
        logits = judge_logits(model, head, enc).view(len(batch), s.group)
        target = torch.tensor(labels).view(len(batch), s.group)
        loss = s.pointwise * torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        if softmax_rows:
            rows = torch.tensor(softmax_rows)
            loss = loss + torch.nn.functional.cross_entropy(
                logits[rows], torch.zeros(len(rows), dtype=torch.long)
            )
        set_lr(step)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(body, 1.0)
        opt.step()
        done += 1
        losses.append(float(loss.detach()))
        progress(log, step, steps, losses, start)
    out.mkdir(parents=True, exist_ok=True)
    state = trained_layers(model)
    state["head.weight"] = head.weight.detach().to(torch.float32).contiguous()
    state["head.bias"] = head.bias.detach().to(torch.float32).contiguous()
    save_file(state, str(out / JUDGE_WEIGHTS))
    return {
        "questions": len(usable),
        "natural": sum(it.source == "natural" for it in usable),
        "negatives_only": len(spare),
        "steps": done,
        "batch": s.batch,
        "group": s.group,
        "lr": s.lr,
        "head_lr": s.head_lr,
        "pointwise": s.pointwise,
        "minutes": round((time.monotonic() - start) / 60, 1),
        "final_loss": round(float(np.mean(losses[-50:])), 4) if losses else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m index.learn.judge", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--eval", type=Path, required=True, help="the eval data folder (../shared/eval)"
    )
    parser.add_argument(
        "--bi-encoder",
        type=Path,
        help="the trained bi-encoder the judge starts from (python -m index.learn.reader --out)",
    )
    parser.add_argument("--out", type=Path, default=READER_DIR, help="where the reader goes")
    parser.add_argument("--minutes", type=float, default=60.0, help="stop training after this long")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--held-out", type=int, default=NATURAL_HELD_OUT)
    parser.add_argument("--calibrate-only", action="store_true", help="keep the judge in --out")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    def log(msg: str) -> None:
        print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)

    missing = [name for name in needed_files() if not (args.eval / name).is_file()]
    if missing:
        raise NewsbotError(f"--eval {args.eval} lacks {', '.join(missing)}")
    start_from = args.bi_encoder
    if not args.calibrate_only and (start_from is None or not (start_from / WEIGHTS).is_file()):
        raise NewsbotError(
            f"no bi-encoder in {start_from}: train one first (python -m index.learn.reader)"
        )
    if args.calibrate_only and not (args.out / JUDGE_WEIGHTS).is_file():
        raise NewsbotError(f"no judge in {args.out}: train it first (without --calibrate-only)")
    articles = load_articles(args.eval)
    train_items, cal_items = load_questions(args.eval, args.held_out)
    spare = load_uncovered_training(args.eval)
    cands = Candidates(articles)
    fill(train_items, cands, pools=False)
    fill(spare, cands, pools=False)
    fill(cal_items, cands, pools=True)
    log(
        f"questions: {len(train_items)} train, {len(spare)} uncovered train, "
        f"{len(cal_items)} calibrate"
    )
    card_path = args.out / CARD
    if args.calibrate_only:
        card: dict[str, Any] = json.loads(card_path.read_text()) if card_path.exists() else {}
    else:
        assert start_from is not None
        bi_card = json.loads((start_from / CARD).read_text())
        card = {"bi_encoder": {k: bi_card.get(k) for k in ("training", "made")}}
        bi = Reader(start_from, threads=args.threads, judge=False)
        rank_negatives(train_items + spare, bi, log)
        schedule = Schedule(args.minutes, args.epochs, args.batch, lr=args.lr)
        card["training"] = train(train_items, spare, start_from, args.out, schedule, log)
        card["calibration"] = bi_card["calibration"]  # replaced below
        card_path.write_text(json.dumps(card, indent=1))
    reader = Reader(args.out, threads=args.threads)
    card["calibration"] = calibrate(cal_items, reader)
    made = {
        "command": "python -m index.learn.judge "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": f"{datetime.now(UTC):%Y-%m-%d}",
        "commit": code_commit(),
        "seed": SEED,
        "base": f"the bi-encoder in {start_from} (its layers), a scale and bias on the cosine"
        if start_from
        else "",
    }
    card["calibrated" if args.calibrate_only else "made"] = made
    if not args.calibrate_only:
        card.pop("calibrated", None)
    card_path.write_text(json.dumps(card, indent=1))
    log(f"calibration {json.dumps(card['calibration']['fit'])}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except NewsbotError as exc:
        raise SystemExit(f"error: {exc}") from None
