"""Speed features: token cache, feature cache, bucketing, and the switches that turn them off."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from torch.utils.data import RandomSampler
from transformers import BertConfig, BertModel, BertTokenizer

from bench.cli import options as opt
from bench.cli.app import app
from bench.config import RunConfig
from bench.data.types import DataReport, Example, SplitDataset
from bench.leaderboard.store import Leaderboard
from bench.model.padding import PadCollator
from bench.preparation.datasets import prepare_dataset
from bench.training.batching import BucketBatchSampler
from bench.training.datamodule import EmotionDataModule, auto_workers
from bench.training.features import (
    FEATURES_DIR,
    FeatureArrays,
    cached_features,
    encoder_digest,
    feature_cache_key,
)
from bench.training.fitting import prepare_run
from bench.training.module import EmotionClassifier
from bench.training.runner import run_experiment
from bench.training.tokencache import (
    TOKENS_DIR,
    cached_encode,
    encode_texts,
    token_cache_key,
    token_cache_path,
)
from encoders.hf import HFEncoder, HFTokenizer
from heads import create_head
from tests.conftest import tiny_config_pairs

WORDS = ["오늘", "정말", "기분", "이", "좋다", "슬프다", "화가", "난다", "무섭다", "놀랐다", "그냥", "그래"]
TEXTS = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(1 + i % 9)) for i in range(60)]
LABELS = ("a", "b", "c")
SWITCHES = ("bucketing", "token_cache", "feature_cache", "compile")


def make_tokenizer(folder: Path, extra: tuple[str, ...] = ()) -> HFTokenizer:
    """A tiny WordPiece tokenizer over :data:`WORDS` (``extra`` pieces change its identity)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *extra]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return HFTokenizer(BertTokenizer.from_pretrained(str(folder), do_lower_case=False))


def make_encoder(seed: int, vocab_size: int = 32) -> HFEncoder:
    """A 2-layer, 32-wide BERT (with pooler) with seeded random weights, SDPA attention."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    return HFEncoder(BertModel(config, add_pooling_layer=True)).eval()


def make_dataset() -> SplitDataset:
    examples = [Example(f"u{i}", text, LABELS[i % 3]) for i, text in enumerate(TEXTS)]
    return SplitDataset("tiny", LABELS, examples[:40], examples[40:50], examples[50:], "fp", DataReport())


def make_datamodule(tokenizer: HFTokenizer, cache: Path | None, **kwargs) -> EmotionDataModule:
    settings = {"max_len": 8, "batch_size": 4, "seed": 1, "cache_dir": cache, **kwargs}
    return EmotionDataModule(make_dataset(), tokenizer, **settings)


# ------------------------------------------------------------------------------------------ token cache


def test_token_arrays_hold_what_encode_batch_gives(tmp_path):
    tokenizer = make_tokenizer(tmp_path / "tok")
    assert tokenizer.tokenize(TEXTS[1]) == TEXTS[1].split(), "the test vocabulary knows every word"
    tokens = encode_texts(tokenizer, TEXTS, 6)
    assert [tokens.sequence(i).tolist() for i in range(len(tokens))] == tokenizer.encode_batch(TEXTS, 6)
    assert tokens.ids.dtype == np.int32 and tokens.offsets.dtype == np.int64
    full = tokenizer.encode_batch(TEXTS, 64)
    assert tokens.truncated.tolist() == [len(ids) > 6 for ids in full]
    split = tokens.select(10, 20)
    assert [split.sequence(i).tolist() for i in range(10)] == [tokens.sequence(i).tolist() for i in range(10, 20)]


def test_token_cache_miss_then_hit(tmp_path):
    tokenizer = make_tokenizer(tmp_path / "tok")
    cache = tmp_path / "cache"
    first, hit = cached_encode(tokenizer, TEXTS, 8, cache)
    assert not hit
    path = token_cache_path(cache, token_cache_key(tokenizer, TEXTS, 8))
    assert path.is_file()
    assert list((cache / TOKENS_DIR).iterdir()) == [path], "no temporary file is left behind"
    with np.load(path, allow_pickle=False) as stored:  # plain numpy arrays, no pickle
        assert set(stored.files) == {"ids", "offsets", "truncated"}
    again, hit = cached_encode(make_tokenizer(tmp_path / "tok2"), TEXTS, 8, cache)
    assert hit, "an identical tokenizer loaded again has the same identity"
    for name in ("ids", "offsets", "truncated"):
        assert np.array_equal(getattr(first, name), getattr(again, name))


@pytest.mark.parametrize(
    "change",
    ["max_len", "texts", "tokenizer"],
)
def test_token_cache_is_invalidated_by_what_changes_the_ids(tmp_path, change):
    tokenizer = make_tokenizer(tmp_path / "tok")
    cache = tmp_path / "cache"
    cached_encode(tokenizer, TEXTS, 8, cache)
    texts, max_len = TEXTS, 8
    if change == "max_len":
        max_len = 9
    elif change == "texts":
        texts = [*TEXTS[:-1], TEXTS[-1] + " 그래"]
    else:
        tokenizer = make_tokenizer(tmp_path / "other", extra=("새말",))
    tokens, hit = cached_encode(tokenizer, texts, max_len, cache)
    assert not hit
    assert len(list((cache / TOKENS_DIR).glob("*.npz"))) == 2
    assert [tokens.sequence(i).tolist() for i in range(len(tokens))] == tokenizer.encode_batch(texts, max_len)


def test_damaged_token_cache_entry_is_rewritten(tmp_path):
    tokenizer = make_tokenizer(tmp_path / "tok")
    cache = tmp_path / "cache"
    expected, _ = cached_encode(tokenizer, TEXTS, 8, cache)
    path = token_cache_path(cache, token_cache_key(tokenizer, TEXTS, 8))
    path.write_bytes(b"not a zip file")
    tokens, hit = cached_encode(tokenizer, TEXTS, 8, cache)
    assert not hit and np.array_equal(tokens.ids, expected.ids)
    assert cached_encode(tokenizer, TEXTS, 8, cache)[1], "the rewritten entry is read again"


def test_datamodule_reads_tokens_from_the_cache_unless_switched_off(tmp_path):
    tokenizer = make_tokenizer(tmp_path / "tok")
    cache = tmp_path / "cache"
    first = make_datamodule(tokenizer, cache)
    first.setup()
    cut = [len(ids) > 8 for ids in tokenizer.encode_batch(TEXTS, 64)]
    assert not first.token_cache_hit
    assert first.truncated == {"train": sum(cut[:40]), "validation": sum(cut[40:50]), "test": sum(cut[50:])}
    assert sum(cut) > 0
    second = make_datamodule(tokenizer, cache)
    second.setup()
    assert second.token_cache_hit and second.truncated == first.truncated
    uncached = make_datamodule(tokenizer, tmp_path / "off", token_cache=False)
    uncached.setup()
    assert not (tmp_path / "off").exists()
    assert [len(uncached.splits["train"][i][1]) for i in range(40)] == first.splits["train"].lengths.tolist()


# ------------------------------------------------------------------------------------------- bucketing


def test_bucketing_is_on_by_default_and_switches_off(tmp_path):
    tokenizer = make_tokenizer(tmp_path / "tok")
    assert RunConfig().bucketing is True
    bucketed = make_datamodule(tokenizer, None)
    bucketed.setup()
    assert isinstance(bucketed.train_dataloader().batch_sampler, BucketBatchSampler)
    plain = make_datamodule(tokenizer, None, bucketing=False)
    plain.setup()
    assert isinstance(plain.train_dataloader().batch_sampler.sampler, RandomSampler)


def test_bucketing_is_part_of_the_run_identity_and_speed_switches_are_not():
    base = RunConfig()
    assert base.with_updates(bucketing=False).config_hash() != base.config_hash()
    for switch in ({"token_cache": False}, {"feature_cache": False}, {"compile": True}, {"num_workers": 2}):
        assert base.with_updates(**switch).config_hash() == base.config_hash(), switch


def test_pad_collator_takes_numpy_ids():
    batch = PadCollator(pad_id=0)([(3, np.array([2, 7, 3], dtype=np.int32), 1), (5, [2, 3], 0)])
    assert batch["input_ids"].dtype == torch.long
    assert batch["input_ids"].tolist() == [[2, 7, 3], [2, 3, 0]]
    assert batch["index"].tolist() == [3, 5]


def test_workers_are_chosen_per_device():
    assert auto_workers("cpu") == 0
    assert 1 <= auto_workers("cuda") <= 4


def test_cli_switches_reach_the_config():
    command = typer.main.get_group(app).get_command(None, "run")  # type: ignore[union-attr]
    flags = {flag for param in command.params for flag in (*param.opts, *param.secondary_opts)}
    assert {"--no-bucketing", "--no-token-cache", "--no-feature-cache", "--compile"} <= flags
    values = {param.name: param.default for param in command.params}
    values.update(bucketing=False, token_cache=False, feature_cache=False, compile=True, results="r")
    config = opt.run_config(values)
    assert [getattr(config, name) for name in SWITCHES] == [False, False, False, True]
    defaults = opt.run_config({name: value for name, value in values.items() if name not in SWITCHES})
    assert [getattr(defaults, name) for name in SWITCHES] == [True, True, True, False]


# ----------------------------------------------------------------------------------------- feature cache


def frozen_module(encoder: HFEncoder, head: str = "cnn") -> EmotionClassifier:
    torch.manual_seed(0)
    module = EmotionClassifier(
        encoder,
        create_head(head, encoder.hidden_size, len(LABELS)),
        num_labels=len(LABELS),
        lr=1e-3,
        freeze_encoder=True,
    )
    return module.eval()


@pytest.mark.parametrize("head", ["cnn", "linear"])
def test_logits_from_cached_features_equal_the_live_frozen_encoder(tmp_path, head):
    tokenizer = make_tokenizer(tmp_path / "tok")
    encoder = make_encoder(seed=3)
    module = frozen_module(encoder, head)
    datamodule = make_datamodule(tokenizer, tmp_path / "cache", feature_encoder=encoder)
    datamodule.setup()
    assert not datamodule.feature_cache_hit
    loaders = {
        "train": datamodule.train_dataloader(),
        "validation": datamodule.val_dataloader(),
        "test": datamodule.test_dataloader(),
    }
    with torch.inference_mode():
        for name, loader in loaders.items():
            cached = {}
            for batch in loader:
                assert "token_states" in batch and batch["token_states"].dtype == torch.float16
                for index, row in zip(batch["index"].tolist(), module.batch_logits(batch)):
                    cached[index] = row
            live = {}
            for batch in datamodule.eval_dataloader(name, batch_size=3):
                logits = module(batch["input_ids"], batch["attention_mask"])
                live.update(zip(batch["index"].tolist(), logits))
            assert sorted(cached) == sorted(live) == list(range(len(datamodule.splits[name])))
            difference = max(float((cached[i] - live[i]).abs().max()) for i in live)
            assert difference < 1e-5, f"{name}: cached and live logits differ by {difference}"


def test_cached_features_are_the_rounded_encoder_outputs(tmp_path):
    tokenizer = make_tokenizer(tmp_path / "tok")
    encoder = make_encoder(seed=3)
    tokens = encode_texts(tokenizer, TEXTS, 8)
    features, hit = cached_features(
        encoder, tokens, tokenizer.pad_id, tmp_path / "cache", device=torch.device("cpu"), precision="32-true"
    )
    assert not hit and isinstance(features.token_states, np.memmap)
    assert not any(module.training for module in encoder.modules()), "the modes are restored"
    index = 17
    ids = torch.tensor([tokens.sequence(index).tolist()])
    with torch.inference_mode():
        output = encoder(ids, torch.ones_like(ids))
    states = output.token_states[0].half().numpy()
    assert np.allclose(features.states(index), states, atol=2e-3, rtol=2e-3)
    assert np.allclose(features.sentence_vectors[index], output.sentence_vector[0].half().numpy(), atol=2e-3)
    restored = pickle.loads(pickle.dumps(features))
    assert restored._arrays is None and np.array_equal(restored.offsets, tokens.offsets)


def test_feature_cache_hit_and_key(tmp_path):
    tokenizer = make_tokenizer(tmp_path / "tok")
    tokens = encode_texts(tokenizer, TEXTS, 8)
    cache, cpu = tmp_path / "cache", torch.device("cpu")
    encoder = make_encoder(seed=3)
    cached_features(encoder, tokens, tokenizer.pad_id, cache, device=cpu, precision="32-true")
    _, hit = cached_features(make_encoder(seed=3), tokens, tokenizer.pad_id, cache, device=cpu, precision="32-true")
    assert hit, "the same weights (same random-init seed) reuse the entry"
    key = feature_cache_key(encoder, tokens, precision="32-true", device_type="cpu")
    assert key != feature_cache_key(make_encoder(seed=4), tokens, precision="32-true", device_type="cpu")
    assert key != feature_cache_key(encoder, encode_texts(tokenizer, TEXTS, 7), precision="32-true", device_type="cpu")
    assert key != feature_cache_key(encoder, tokens, precision="bf16-mixed", device_type="cpu")
    entries = [path.name for path in (cache / FEATURES_DIR).iterdir()]
    assert entries == [key], "one complete entry, no staging folder left"


def test_damaged_feature_entry_is_recomputed(tmp_path):
    tokenizer = make_tokenizer(tmp_path / "tok")
    tokens = encode_texts(tokenizer, TEXTS, 8)
    cache, cpu = tmp_path / "cache", torch.device("cpu")
    encoder = make_encoder(seed=3)
    first, _ = cached_features(encoder, tokens, tokenizer.pad_id, cache, device=cpu, precision="32-true")
    expected = np.array(first.sentence_vectors)
    (first.directory / "token_states.npy").write_bytes(b"damaged")
    again, hit = cached_features(encoder, tokens, tokenizer.pad_id, cache, device=cpu, precision="32-true")
    assert not hit and np.array_equal(np.array(again.sentence_vectors), expected)


def test_encoder_digest_follows_the_weights():
    encoder = make_encoder(seed=3)
    digest = encoder_digest(encoder)
    assert digest == encoder_digest(make_encoder(seed=3))
    with torch.no_grad():
        encoder.model.pooler.dense.bias[0] += 1
    assert encoder_digest(encoder) != digest


def tiny_run(results_dir: Path, **changes) -> RunConfig:
    return RunConfig(
        encoder="scratch",
        head="linear",
        encoder_config=tiny_config_pairs(),
        train_limit=60,
        epochs=2,
        max_len=24,
        batch_size=16,
        lr=1e-3,
        head_lr=1e-2,
        freeze_encoder=True,
        results_dir=str(results_dir),
    ).with_updates(**changes)


def test_frozen_runs_share_one_encoder_pass_and_match_runs_without_the_cache(tmp_path):
    dataset = prepare_dataset(tiny_run(tmp_path))
    probabilities = {}
    for feature_cache in (True, False):
        results = tmp_path / ("cached" if feature_cache else "live")
        board = Leaderboard.for_results_dir(results)
        for head in ("bilstm", "mlp"):
            record = run_experiment(tiny_run(results, head=head, feature_cache=feature_cache), board, dataset=dataset)
            assert record.status == "finished", record.error
            probabilities[feature_cache, head] = np.array(board.predictions(record.run_id).probabilities)
        entries = list((results / "cache" / FEATURES_DIR).glob("*"))
        assert len(entries) == (1 if feature_cache else 0), "both heads share one encoder pass"
    for head in ("bilstm", "mlp"):
        assert np.allclose(probabilities[True, head], probabilities[False, head], atol=1e-4), head


def test_switches_turn_the_caches_and_compile_off_and_on(tmp_path):
    config = tiny_run(tmp_path / "r", feature_cache=False, token_cache=False)
    prepared = prepare_run(config, prepare_dataset(config))
    assert prepared.datamodule.feature_encoder is None and not prepared.datamodule.token_cache
    prepared.datamodule.setup()
    assert not (tmp_path / "r" / "cache" / TOKENS_DIR).exists()
    on = prepare_run(tiny_run(tmp_path / "r"), prepare_dataset(config))
    assert on.datamodule.feature_encoder is on.module.encoder and on.datamodule.token_cache
    trained = prepare_run(tiny_run(tmp_path / "r", freeze_encoder=False), prepare_dataset(config))
    assert trained.datamodule.feature_encoder is None, "the feature cache serves frozen encoders only"
    assert getattr(on.module.encoder, "_compiled_call_impl", None) is None
    compiled = prepare_run(tiny_run(tmp_path / "r", compile=True), prepare_dataset(config))
    assert getattr(compiled.module.encoder, "_compiled_call_impl", None) is not None


def test_feature_arrays_reopen_lazily(tmp_path):
    tokenizer = make_tokenizer(tmp_path / "tok")
    tokens = encode_texts(tokenizer, TEXTS, 8)
    features, _ = cached_features(
        make_encoder(seed=1), tokens, tokenizer.pad_id, tmp_path / "c", device=torch.device("cpu"), precision="32-true"
    )
    reopened = FeatureArrays(features.directory)
    assert len(reopened) == len(TEXTS) and reopened.hidden_size == 32
    assert np.array_equal(reopened.states(5), features.states(5))


def test_tf32_matmuls_are_enabled_for_cuda_runs_only(monkeypatch):
    module = frozen_module(make_encoder(seed=1))
    previous = torch.get_float32_matmul_precision()
    for device, expected in (("cpu", "highest"), ("cuda", "high")):
        trainer = type("Trainer", (), {"strategy": type("Strategy", (), {"root_device": torch.device(device)})()})()
        monkeypatch.setattr(EmotionClassifier, "trainer", property(lambda self, trainer=trainer: trainer))
        torch.set_float32_matmul_precision("highest")
        try:
            module.setup("fit")
            assert torch.get_float32_matmul_precision() == expected
        finally:
            torch.set_float32_matmul_precision(previous)
