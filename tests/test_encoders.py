"""Encoders: tiny forward/backward of every family, sentence vectors, loading rules, offline errors, registry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch

import bench.cli.encoders  # noqa: F401  (registers the commands)
from bench.cli.app import main
from bench.errors import EncoderUnavailableError, UsageError
from encoders import (
    BuiltEncoder,
    EncoderOutput,
    EncoderRequest,
    create_encoder,
    create_tokenizer,
    list_encoders,
    load_tokenizer,
)
from encoders.hf import HFEncoder
from encoders.registry import HF_PATTERN, check_encoder_name
from tests.conftest import shared_path, tiny_config_pairs
from tests.test_tokenizers import korean_sentences

TEXTS = ["한국어 모델을 공유합니다.", "오늘 정말 행복해요 ㅋㅋ", "화가 나요"]
TINY_ELECTRA = tiny_config_pairs({"embedding_size": 16})


def tiny_kobert_folder(tmp_path: Path) -> Path:
    """A folder with a tiny KoBERT config.json and a copy of the real spiece.model."""
    folder = tmp_path / "kobert-tiny"
    folder.mkdir()
    config = json.loads(shared_path("models/kobert/config.json").read_text(encoding="utf-8"))
    config.update(dict(tiny_config_pairs()))
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    shutil.copy(shared_path("models/kobert/spiece.model"), folder / "spiece.model")
    return folder


def build(name: str, tmp_path: Path) -> BuiltEncoder:
    if name == "kobert":
        return create_encoder(EncoderRequest("kobert", path=tiny_kobert_folder(tmp_path), random_init=True))
    if name == "koelectra-small":
        folder = shared_path("models/koelectra-small-v3")
        return create_encoder(EncoderRequest(name, path=folder, random_init=True, config_overrides=TINY_ELECTRA))
    request = EncoderRequest(
        "scratch", train_texts=korean_sentences(300), cache_dir=tmp_path / "cache", config_overrides=tiny_config_pairs()
    )
    return create_encoder(request)


def padded_batch(built: BuiltEncoder, texts: list[str], max_len: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    rows = built.tokenizer.encode_batch(texts, max_len)
    width = max(map(len, rows))
    ids = torch.tensor([row + [built.tokenizer.pad_id] * (width - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    return ids, mask


@pytest.mark.parametrize("name", ["kobert", "koelectra-small", "scratch"])
def test_forward_and_backward_reach_every_parameter(name: str, tmp_path: Path, monkeypatch) -> None:
    built = build(name, tmp_path)
    encoder = built.encoder
    assert isinstance(encoder, HFEncoder) and encoder.hidden_size == 32
    assert encoder.model.config.num_hidden_layers == 2
    attention_calls: list[tuple[int, ...]] = []
    fused_attention = torch.nn.functional.scaled_dot_product_attention

    def counting_attention(query, *args, **kwargs):
        attention_calls.append(tuple(query.shape))
        return fused_attention(query, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting_attention)
    ids, mask = padded_batch(built, TEXTS)
    output = encoder(ids, mask)
    # Every layer attends through torch's fused scaled-dot-product attention (SDPA).
    assert len(attention_calls) == 2 and all(shape[0] == len(TEXTS) for shape in attention_calls)
    assert isinstance(output, EncoderOutput)
    assert output.token_states.shape == (len(TEXTS), ids.shape[1], 32)
    assert output.sentence_vector.shape == (len(TEXTS), 32)
    assert output.attention_mask.dtype == torch.bool and torch.equal(output.attention_mask, mask.bool())
    (output.token_states.pow(2).mean() + output.sentence_vector.pow(2).mean()).backward()
    without_grad = [
        n for n, p in encoder.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())
    ]
    assert not without_grad


def test_bert_sentence_vector_is_the_pooler_output(tmp_path: Path) -> None:
    built = build("kobert", tmp_path)
    assert built.tokenizer.pad_id == 1 and built.encoder.model.config.pad_token_id == 1
    built.encoder.eval()
    ids, mask = padded_batch(built, TEXTS)
    output = built.encoder(ids, mask)
    pooled = built.encoder.model.pooler(output.token_states)
    assert torch.allclose(output.sentence_vector, pooled)
    assert not torch.allclose(output.sentence_vector, output.token_states[:, 0])


def test_electra_sentence_vector_is_the_cls_state(tmp_path: Path) -> None:
    built = build("koelectra-small", tmp_path)
    assert type(built.encoder.model).__name__ == "ElectraModel" and not hasattr(built.encoder.model, "pooler")
    ids, mask = padded_batch(built, TEXTS)
    output = built.encoder(ids, mask)
    assert torch.equal(output.sentence_vector, output.token_states[:, 0])


def test_scratch_is_a_small_bert_sized_to_its_tokenizer(tmp_path: Path) -> None:
    request = EncoderRequest("scratch", train_texts=korean_sentences(300), cache_dir=tmp_path)
    built = create_encoder(request)
    config = built.encoder.model.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.intermediate_size) == (
        4,
        256,
        4,
        1024,
    )
    assert config.vocab_size == built.tokenizer.vocab_size and config.pad_token_id == built.tokenizer.pad_id == 0


def test_saved_model_folder_loads_again_with_its_weights(tmp_path: Path) -> None:
    built = build("scratch", tmp_path)
    folder = tmp_path / "export"
    built.encoder.model.save_pretrained(folder)
    built.tokenizer.save(folder)
    assert load_tokenizer(folder).encode_batch(TEXTS, 32) == built.tokenizer.encode_batch(TEXTS, 32)
    for name in ("scratch", "hf:exported-scratch"):
        again = create_encoder(EncoderRequest(name, path=folder))
        original, loaded = built.encoder.state_dict(), again.encoder.state_dict()
        assert loaded.keys() == original.keys()
        assert all(torch.equal(original[key], loaded[key]) for key in original)
        assert again.tokenizer.encode_batch(TEXTS, 32) == built.tokenizer.encode_batch(TEXTS, 32)


def test_hf_encoder_from_a_local_folder_uses_first_token_without_pooler(tmp_path: Path) -> None:
    electra = build("koelectra-small", tmp_path)
    folder = tmp_path / "electra"
    electra.encoder.model.save_pretrained(folder)
    electra.tokenizer.save(folder)
    built = create_encoder(EncoderRequest("hf:local-electra", path=folder, random_init=True))
    assert type(built.encoder.model).__name__ == "ElectraModel" and built.source.endswith("(random init)")
    ids, mask = padded_batch(built, TEXTS)
    output = built.encoder(ids, mask)
    assert torch.equal(output.sentence_vector, output.token_states[:, 0])


def test_config_overrides_are_checked_and_typed(tmp_path: Path) -> None:
    texts = korean_sentences(100)
    overrides = (("num_hidden_layers", "1"), ("hidden_size", 32), ("num_attention_heads", 2), ("intermediate_size", 64))
    built = create_encoder(EncoderRequest("scratch", train_texts=texts, cache_dir=tmp_path, config_overrides=overrides))
    assert built.encoder.model.config.num_hidden_layers == 1
    with pytest.raises(UsageError, match="no field 'num_layerz'"):
        create_encoder(
            EncoderRequest("scratch", train_texts=texts, cache_dir=tmp_path, config_overrides=(("num_layerz", 2),))
        )
    with pytest.raises(UsageError, match="must be of type int"):
        create_encoder(
            EncoderRequest("scratch", train_texts=texts, cache_dir=tmp_path, config_overrides=(("hidden_size", "big"),))
        )
    with pytest.raises(UsageError, match="no valid model"):
        create_encoder(
            EncoderRequest("scratch", train_texts=texts, cache_dir=tmp_path, config_overrides=(("hidden_size", 30),))
        )


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1, also for the already imported hub library."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.parametrize("name", ["hf:no-such-org/no-such-model", "kobert", "koelectra", "koelectra-small"])
def test_offline_without_cached_model_gives_one_clear_error(name: str, offline: None) -> None:
    with pytest.raises(EncoderUnavailableError) as error:
        create_encoder(EncoderRequest(name))
    message = str(error.value)
    assert "\n" not in message and "--encoder-path" in message and "Hugging Face cache" in message
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_unusable_encoder_paths(tmp_path: Path, offline: None) -> None:
    with pytest.raises(EncoderUnavailableError, match="is not a folder"):
        create_encoder(EncoderRequest("kobert", path=tmp_path / "missing"))
    with pytest.raises(EncoderUnavailableError, match="--encoder-path") as error:
        create_encoder(EncoderRequest("hf:anything", path=tmp_path))
    assert "\n" not in str(error.value)
    folder = tiny_kobert_folder(tmp_path)  # config and tokenizer, but no weights
    with pytest.raises(EncoderUnavailableError, match="--random-init"):
        create_encoder(EncoderRequest("kobert", path=folder))
    (folder / "config.json").write_bytes(shared_path("models/koelectra-small-v3/config.json").read_bytes())
    with pytest.raises(EncoderUnavailableError, match="model of type 'electra', expected 'bert'"):
        create_encoder(EncoderRequest("kobert", path=folder, random_init=True))


def test_custom_model_code_runs_only_with_trust_remote_code(tmp_path: Path) -> None:
    folder = tmp_path / "custom"
    create_tokenizer(EncoderRequest("koelectra-small", path=shared_path("models/koelectra-small-v3"))).save(folder)
    config = {
        "model_type": "custom-x",
        "auto_map": {"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel"},
    }
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(UsageError, match="--trust-remote-code"):
        create_encoder(EncoderRequest("hf:custom", path=folder, random_init=True))
    with pytest.raises(EncoderUnavailableError, match="configuration_x.py"):  # allowed, so it looks for the code
        create_encoder(EncoderRequest("hf:custom", path=folder, random_init=True, trust_remote_code=True))


def test_offline_cli_error_is_one_line(offline: None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["tokenize", "--encoder", "hf:no-such-org/no-such-model", "text"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: encoder 'hf:no-such-org/no-such-model'") and "Traceback" not in err


def test_registry_lists_every_family_with_parameter_counts() -> None:
    entries = {entry.name: entry for entry in list_encoders()}
    assert set(entries) == {"kobert", "koelectra", "koelectra-small", "e5-small", "klue-roberta", "scratch", HF_PATTERN}
    assert entries["kobert"].hub_id == "skt/kobert-base-v1"
    assert entries["koelectra-small"].hub_id == "monologg/koelectra-small-v3-discriminator"
    assert round(entries["kobert"].parameter_count() / 1e6, 1) == 92.2  # type: ignore[misc]
    assert round(entries["koelectra-small"].parameter_count() / 1e6, 1) == 14.1  # type: ignore[misc]
    assert 100e6 < entries["koelectra"].parameter_count() < 120e6  # type: ignore[misc,operator]
    assert entries[HF_PATTERN].parameter_count is None
    check_encoder_name("hf:klue/roberta-base")
    with pytest.raises(UsageError, match="needs a model id"):
        check_encoder_name("hf: ")
    with pytest.raises(UsageError, match="choose one of: e5-small, hf:<model-id>, klue-roberta, kobert"):
        check_encoder_name("bert")


def test_bench_encoders_table(capsys: pytest.CaptureFixture[str], wide_console: None) -> None:
    main(["encoders"])
    out = capsys.readouterr().out
    for text in ("kobert", "koelectra-small", "scratch", "hf:<model-id>", "92.2M", "14.1M", "skt/kobert-base-v1"):
        assert text in out
    assert "3e-05 (random init 0.0005)" in out and "0.0005 (from scratch)" in out
    assert "0.0001, head 0.001, batch 16 (random init 0.0005)" in out  # e5-small's fine-tuning defaults


def test_default_learning_rate_follows_the_weights() -> None:
    from bench.config import RunConfig

    assert RunConfig(encoder="koelectra-small").lr == 3e-5
    assert RunConfig(encoder="koelectra-small", random_init=True).lr == 5e-4  # random weights: the from-scratch rate
    assert RunConfig(encoder="hf:klue/roberta-base", random_init=True).lr == 5e-4
    assert RunConfig(encoder="scratch").lr == RunConfig(encoder="scratch", random_init=True).lr == 5e-4
    assert RunConfig(encoder="kobert", random_init=True, lr=1e-4).lr == 1e-4
    recorded = RunConfig(encoder="koelectra", random_init=True)
    assert json.loads(recorded.to_json())["lr"] == 5e-4
    assert recorded.config_hash() == RunConfig(encoder="koelectra", random_init=True, lr=5e-4).config_hash()


def test_an_encoder_brings_its_head_rate_and_batch_for_its_published_weights() -> None:
    from bench.config import RunConfig

    e5 = RunConfig(encoder="e5-small")
    assert (e5.lr, e5.head_lr, e5.batch_size) == (1e-4, 1e-3, 16)
    assert e5.config_hash() == RunConfig(encoder="e5-small", lr=1e-4, head_lr=1e-3, batch_size=16).config_hash()
    # A run that sets --lr trains its head at that rate (unless --head-lr); --batch-size wins over the encoder's.
    assert RunConfig(encoder="e5-small", lr=5e-5).head_lr is None
    assert RunConfig(encoder="e5-small", head_lr=3e-4).head_lr == 3e-4
    assert RunConfig(encoder="e5-small", batch_size=64).batch_size == 64
    # Random weights are trained, not fine-tuned: the from-scratch rate for both, the standard batch.
    random = RunConfig(encoder="e5-small", random_init=True)
    assert (random.lr, random.head_lr, random.batch_size) == (5e-4, None, 32)
    # Encoders that set nothing keep the standard batch and no head rate, so their runs keep their identity.
    kobert = RunConfig(encoder="kobert")
    assert (kobert.head_lr, kobert.batch_size) == (None, 32)
    assert json.loads(kobert.to_json())["batch_size"] == 32
    assert kobert.config_hash() == RunConfig(encoder="kobert", batch_size=32).config_hash()


def test_each_entry_owns_its_search_space_and_unknown_encoders_have_none() -> None:
    from bench.tuning.spaces import RUN_PARAMS, encoder_space, standard_space

    assert encoder_space("kobert")["lr"].high == 1e-4
    assert encoder_space("kobert", random_init=True)["lr"] == encoder_space("scratch")["lr"]
    small = encoder_space("koelectra-small")
    assert small["epochs"].high == 8 and small["lr"].high == 3e-4
    # An entry sets ranges in place of the standard ones; the others stay.
    assert set(small) == set(RUN_PARAMS) and small["warmup_ratio"] == standard_space()["warmup_ratio"]
    assert encoder_space("koelectra-small", random_init=True) == standard_space(random_init=True)
    with pytest.raises(UsageError, match="unknown encoder 'bert'"):
        encoder_space("bert")


def test_a_saved_hf_encoder_is_rebuilt_by_its_entry() -> None:
    from transformers import AutoConfig, AutoModel

    from encoders import encoder_entry

    config = AutoConfig.for_model("electra", **dict(tiny_config_pairs()), vocab_size=50, embedding_size=16)
    original = HFEncoder(AutoModel.from_config(config))
    architecture = json.loads(json.dumps(original.architecture()))
    assert "_name_or_path" not in architecture and architecture["model_type"] == "electra"
    rebuilt = encoder_entry("koelectra-small").rebuild(architecture)
    assert isinstance(rebuilt, HFEncoder) and rebuilt.hidden_size == original.hidden_size
    assert rebuilt.model.config.to_dict()["embedding_size"] == 16
    assert set(rebuilt.state_dict()) == set(original.state_dict())


def test_an_encoder_that_cannot_describe_itself_fails_before_training(monkeypatch: pytest.MonkeyPatch) -> None:
    from encoders import registry
    from encoders.base import TextEncoder

    class Unsaveable(TextEncoder):
        hidden_size = 4

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
            raise NotImplementedError

        def architecture(self) -> dict:
            return {"path": Path("/somewhere")}

    registry.register_encoder("unsaveable", description="", tokenizer=print, rebuild=print, pretrained=False)(
        lambda request: BuiltEncoder(Unsaveable(), None, "test")  # type: ignore[arg-type]
    )
    monkeypatch.setitem(registry._REGISTRY, "unsaveable", registry._REGISTRY.pop("unsaveable"))
    with pytest.raises(UsageError, match="encoder 'unsaveable': its architecture\\(\\) must be a JSON object"):
        create_encoder(EncoderRequest("unsaveable"))
