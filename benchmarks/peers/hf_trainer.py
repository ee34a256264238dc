"""The Hugging Face Trainer doing the benchmark's job, as a Hugging Face user would write it.

Reads a csv (``text``, ``label``), splits it 80/10/10 stratified, tokenises with the folder's fast tokenizer
(``AutoTokenizer`` on the encoder folder), builds ``AutoModelForSequenceClassification`` from the folder
(``ElectraForSequenceClassification`` for a KoELECTRA folder, ``XLMRobertaForSequenceClassification`` for
e5-small): random weights from ``config.json``, or the folder's weights with ``--pretrained``. With
``--head NAME`` the model is ``AutoModel`` with the project's head module ``NAME`` (from ``heads/``) on its
pooler output (else its first token), as ``bench`` builds it. Trains with ``Trainer``
(``DataCollatorWithPadding``, ``train_sampling_strategy="group_by_length"``, AdamW, linear warmup then decay,
gradient clipping 1.0, fp32 on CPU, bf16 on a GPU), evaluates on validation after each epoch and on test at
the end, and writes its figures as JSON, with the token count of the whole file and the share of unknown
tokens, so a benchmark can check that both sides train on the same tokens. ``--freeze-encoder`` trains the
classification head only (the encoder still runs forward on every batch: the Trainer has no feature cache).

    python benchmarks/peers/hf_trainer.py --data job.csv --model-dir ../shared/models/koelectra-small-v3 \\
        --output figures.json
"""

from __future__ import annotations

import time

PROCESS_STARTED = time.perf_counter()

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

IMPORTED = time.perf_counter()
MAX_UNKNOWN_SHARE = 0.05  # more means the tokenizer does not fit the text (and the job would be a different one)


class StepTimer(TrainerCallback):
    """Seconds spent in training steps (validation excluded), as ``bench run`` counts its training time, and in
    the validation passes after each epoch."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.steps = 0
        self.validation_seconds = 0.0
        self._started = 0.0
        self._epoch_ended: float | None = None

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._epoch_ended = time.perf_counter()

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._epoch_ended is not None:  # a validation pass inside train(), not the test pass after it
            self.validation_seconds += time.perf_counter() - self._epoch_ended
            self._epoch_ended = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.seconds += time.perf_counter() - self._started
        self.steps += 1


class EncoderWithHead(nn.Module):
    """``AutoModel`` with one of the project's heads, as ``bench`` composes them; returns the Trainer's loss."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        from encoders.base import EncoderOutput

        outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        pooled = getattr(outputs, "pooler_output", None)
        vector = pooled if pooled is not None else outputs.last_hidden_state[:, 0]
        logits = self.head(EncoderOutput(outputs.last_hidden_state, attention_mask.bool(), vector))
        if labels is None:
            return {"logits": logits}
        return {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


def build_model(args: argparse.Namespace, num_labels: int) -> tuple[nn.Module, nn.Module]:
    """The classifier and its encoder part (what ``--freeze-encoder`` freezes)."""
    config = AutoConfig.from_pretrained(args.model_dir, num_labels=num_labels)
    for pair in args.config:
        key, value = pair.split("=", 1)
        setattr(config, key, int(value))
    if args.head is None:
        auto = AutoModelForSequenceClassification
        model = auto.from_pretrained(args.model_dir, config=config) if args.pretrained else auto.from_config(config)
        return model, model.base_model
    from heads import create_head  # the project's heads (the benchmark puts the checkout on the import path)

    encoder = (
        AutoModel.from_pretrained(args.model_dir, config=config) if args.pretrained else AutoModel.from_config(config)
    )
    return EncoderWithHead(encoder, create_head(args.head, int(config.hidden_size), num_labels)), encoder


def training_arguments(args: argparse.Namespace, output_dir: str) -> TrainingArguments:
    """The Trainer settings the benchmark reports."""
    gpu = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        lr_scheduler_type="linear",
        warmup_steps=args.warmup_ratio,  # a float below 1 is a share of the steps in transformers 5
        max_grad_norm=1.0,
        train_sampling_strategy="group_by_length",
        eval_strategy="epoch",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        bf16=gpu,
        use_cpu=not gpu,
        dataloader_num_workers=0,
        seed=args.seed,
    )


def main() -> None:
    """Read, split, tokenise, train, evaluate; write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="csv with text and label columns")
    parser.add_argument(
        "--model-dir",
        type=Path,
        required=True,
        help="encoder folder: config.json and tokenizer files (weights with --pretrained)",
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON file for the figures")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--freeze-encoder", action="store_true", help="train the classification head only")
    parser.add_argument("--pretrained", action="store_true", help="the folder's weights (default: random weights)")
    parser.add_argument("--text-prefix", default="", help="put before every text (e5-small: 'query: ', as bench does)")
    parser.add_argument(
        "--freeze-word-embeddings", action="store_true", help="keep the word embedding matrix fixed (as bench does)"
    )
    parser.add_argument("--head", help="one of the project's heads on AutoModel (default: the model's own head)")
    parser.add_argument("--config", action="append", default=[], help="KEY=INT config override (tiny runs)")
    args = parser.parse_args()
    phases: dict[str, float] = {"imports_seconds": IMPORTED - PROCESS_STARTED}

    started = time.perf_counter()
    frame = pd.read_csv(args.data)
    phases["read_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    labels = sorted(frame["label"].unique())
    frame["labels"] = frame["label"].map({label: index for index, label in enumerate(labels)})
    train, rest = train_test_split(frame, test_size=0.2, stratify=frame["labels"], random_state=args.seed)
    validation, test = train_test_split(rest, test_size=0.5, stratify=rest["labels"], random_state=args.seed)
    phases["split_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)

    def encode(split: pd.DataFrame) -> list[dict[str, Any]]:
        texts = [args.text_prefix + text for text in split["text"].tolist()]
        encoded = tokenizer(texts, truncation=True, max_length=args.max_len)
        return [
            {"input_ids": ids, "attention_mask": mask, "labels": int(label)}
            for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], split["labels"], strict=True)
        ]

    train_set, validation_set, test_set = encode(train), encode(validation), encode(test)
    phases["tokenize_seconds"] = time.perf_counter() - started
    every_id = [token for split in (train_set, validation_set, test_set) for row in split for token in row["input_ids"]]
    unknown_share = every_id.count(tokenizer.unk_token_id) / len(every_id)
    if unknown_share > MAX_UNKNOWN_SHARE:
        raise SystemExit(
            f"the tokenizer of {args.model_dir} maps {unknown_share:.0%} of the tokens to its unknown token"
        )

    started = time.perf_counter()
    set_seed(args.seed)
    model, encoder = build_model(args, len(labels))
    if args.freeze_encoder:
        for parameter in encoder.parameters():
            parameter.requires_grad = False
    if args.freeze_word_embeddings:
        encoder.get_input_embeddings().weight.requires_grad_(False)

    def compute_metrics(prediction: Any) -> dict[str, float]:
        predicted = np.argmax(prediction.predictions, axis=-1)
        return {"macro_f1": float(f1_score(prediction.label_ids, predicted, average="macro"))}

    timer = StepTimer()
    with tempfile.TemporaryDirectory(prefix="hf-trainer-") as output_dir:
        trainer = Trainer(
            model=model,
            args=training_arguments(args, output_dir),
            train_dataset=train_set,
            eval_dataset=validation_set,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=compute_metrics,
            callbacks=[timer],
        )
        phases["setup_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        trainer.train()
        phases["train_and_validation_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        scores = trainer.evaluate(test_set, metric_key_prefix="test")
        phases["test_seconds"] = time.perf_counter() - started
    figures = {
        "train_examples": len(train_set),
        "tokens": len(every_id),
        "unknown_share": unknown_share,
        "validation_examples": len(validation_set),
        "test_examples": len(test_set),
        "train_seconds": timer.seconds,
        "validation_seconds": timer.validation_seconds,
        "train_samples_per_second": len(train_set) * args.epochs / timer.seconds,
        "test_macro_f1": scores["test_macro_f1"],
        **phases,
        "threads": torch.get_num_threads(),
        "process_seconds": time.perf_counter() - PROCESS_STARTED,
    }
    args.output.write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
