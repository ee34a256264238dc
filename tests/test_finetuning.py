"""Fine-tuning mechanics and the RoBERTa family: layer-wise learning rates, re-initialised top layers,
positions numbered from the padding index, e5-small's prefix and mean pooling, klue-roberta's published layout.

Tiny random-weight folders stand in for the published models (the hub is not needed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModel, XLMRobertaTokenizer

from bench.config import RunConfig
from bench.errors import UsageError
from bench.training.finetuning import optimizer_groups, prepare_encoder
from bench.training.module import EmotionClassifier
from encoders import EncoderRequest, create_encoder
from encoders.hf import HFEncoder
from encoders.registry import load_tokenizer
from heads import create_head
from tests.conftest import run_cli
from tests.test_tokenizers import korean_sentences

TINY = {"hidden_size": 32, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 64}
TEXTS = ["좋아", "화가 나요", *korean_sentences(6, seed=1)]


def _characters() -> list[str]:
    return sorted(
        {character for text in korean_sentences(300) + TEXTS for character in text if not character.isspace()}
    )


def tiny_e5_folder(root: Path) -> Path:
    """An XLM-R folder shaped like multilingual-e5-small (Unigram tokenizer, 514 positions, one token type)."""
    folder = root / "tiny-e5"
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁query", -2.0), (":", -2.0), ("▁", -3.0)]
    pieces += [(character, -5.0) for character in _characters()] + [("<mask>", 0.0)]
    XLMRobertaTokenizer(vocab=pieces, model_max_length=512).save_pretrained(folder)
    config = AutoConfig.for_model(
        "xlm-roberta",
        vocab_size=len(pieces),
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        **TINY,
    )
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    return folder


def tiny_klue_folder(root: Path) -> Path:
    """klue/roberta-base's published layout with random weights: RobertaModel + WordPiece ``BertTokenizer`` files.

    The layout (config.json naming ``tokenizer_class: BertTokenizer``; tokenizer_config.json with cased
    WordPiece and ``[CLS]``/``[SEP]`` as bos/eos; vocab.txt starting ``[CLS] [PAD] [SEP] [UNK]`` so that
    ``[PAD]`` is id 1, RoBERTa's padding index) is that of the hub repository klue/roberta-base.
    """
    folder = root / "tiny-klue"
    folder.mkdir()
    vocabulary = ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"]
    vocabulary += [piece for character in _characters() for piece in (character, f"##{character}")]
    (folder / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    tokens = {
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "bos_token": "[CLS]",
        "eos_token": "[SEP]",
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(tokens), encoding="utf-8")
    settings = {
        "do_lower_case": False,
        "do_basic_tokenize": True,
        "never_split": None,
        **tokens,
        "tokenize_chinese_chars": True,
        "strip_accents": None,
        "model_max_length": 512,
        "tokenizer_class": "BertTokenizer",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(settings), encoding="utf-8")
    config = AutoConfig.for_model(
        "roberta",
        vocab_size=len(vocabulary),
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        layer_norm_eps=1e-5,
        tokenizer_class="BertTokenizer",
        **TINY,
    )
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def e5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_e5_folder(tmp_path_factory.mktemp("e5"))


@pytest.fixture(scope="module")
def klue_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_klue_folder(tmp_path_factory.mktemp("klue"))


def padded(built, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = built.tokenizer.encode_batch(texts, 32)
    width = max(map(len, rows))
    ids = torch.tensor([row + [built.tokenizer.pad_id] * (width - len(row)) for row in rows])
    return ids, (ids != built.tokenizer.pad_id).long()


@pytest.mark.parametrize("name", ["e5-small", "klue-roberta"])
def test_roberta_positions_count_from_the_padding_index_whatever_the_padding(name, e5_folder, klue_folder) -> None:
    built = create_encoder(EncoderRequest(name, path=e5_folder if name == "e5-small" else klue_folder))
    encoder = built.encoder.eval()
    assert isinstance(encoder, HFEncoder) and encoder.max_tokens() == 512  # 514 positions, padding index 1
    assert built.tokenizer.pad_id == encoder.model.config.pad_token_id == 1
    ids, mask = padded(built, TEXTS)
    assert ids[0, 0].item() == 0 and 2 in ids[0].tolist()  # <s> … </s> ([CLS] … [SEP] in KLUE's vocabulary)
    with torch.no_grad():
        batch = encoder(ids, mask)
        for row, text in enumerate(TEXTS):
            alone_ids, alone_mask = padded(built, [text])
            alone = encoder(alone_ids, alone_mask)
            length = alone_ids.shape[1]
            # Same states with or without padding after it: positions are the text's own, from index 2 on.
            assert torch.allclose(batch.token_states[row, :length], alone.token_states[0], atol=1e-5)
            assert torch.allclose(batch.sentence_vector[row], alone.sentence_vector[0], atol=1e-5)


def test_e5_small_prefixes_query_and_mean_pools(e5_folder: Path, tmp_path: Path) -> None:
    built = create_encoder(EncoderRequest("e5-small", path=e5_folder))
    assert built.tokenizer.encode("좋아").pieces[:3] == ["<s>", "▁query", ":"]
    encoder = built.encoder.eval()
    ids, mask = padded(built, TEXTS)
    with torch.no_grad():
        output = encoder(ids, mask)
    expected = torch.stack([output.token_states[row, mask[row].bool()].mean(dim=0) for row in range(len(TEXTS))])
    assert torch.allclose(output.sentence_vector, expected, atol=1e-6)
    # The word embeddings stay fixed in fine-tuning; everything else trains.
    frozen = [name for name, parameter in encoder.named_parameters() if not parameter.requires_grad]
    assert frozen == ["model.embeddings.word_embeddings.weight"]
    built.tokenizer.save(tmp_path / "saved")
    reloaded = load_tokenizer(tmp_path / "saved")
    assert reloaded.encode_batch(TEXTS, 32) == built.tokenizer.encode_batch(TEXTS, 32)


def test_klue_roberta_loads_the_published_bert_tokenizer(klue_folder: Path) -> None:
    built = create_encoder(EncoderRequest("klue-roberta", path=klue_folder))
    assert type(built.tokenizer.hf).__name__.startswith("BertTokenizer")
    encoding = built.tokenizer.encode("화가 나요")
    assert encoding.pieces[0] == "[CLS]" and encoding.pieces[-1] == "[SEP]" and "##가" in encoding.pieces
    assert built.encoder.model.config.model_type == "roberta" and built.encoder.pooling == "first"


def test_max_len_beyond_the_positions_is_a_usage_error(e5_folder: Path, tmp_path: Path) -> None:
    built = create_encoder(EncoderRequest("e5-small", path=e5_folder))
    config = RunConfig(encoder="e5-small", encoder_path=str(e5_folder), max_len=513, results_dir=str(tmp_path))
    with pytest.raises(UsageError, match=r"--max-len 513 is more than encoder 'e5-small' takes \(512 tokens\)"):
        prepare_encoder(built.encoder, config)
    prepare_encoder(built.encoder, config.with_updates(max_len=512))


def _tiny_bert() -> HFEncoder:
    torch.manual_seed(0)
    return HFEncoder(AutoModel.from_config(AutoConfig.for_model("bert", vocab_size=50, **TINY)))


def test_layer_groups_run_from_the_embeddings_to_the_top_layer() -> None:
    encoder = _tiny_bert()
    groups = encoder.layer_groups()
    names = {id(parameter): name for name, parameter in encoder.named_parameters()}
    assert len(groups) == 4 and sum(map(len, groups)) == len(names)
    assert all(names[id(parameter)].startswith("model.embeddings.") for parameter in groups[0])
    assert all(".layer.1." in names[id(parameter)] for parameter in groups[2])
    assert {names[id(parameter)] for parameter in groups[3]} >= {"model.pooler.dense.weight"}


def test_layer_wise_decay_gives_each_layer_its_learning_rate() -> None:
    encoder = _tiny_bert()
    head = create_head("linear", 32, 3, {})
    groups = optimizer_groups(encoder, head, lr=1e-3, head_lr=5e-3, weight_decay=0.01, layer_lr_decay=0.5)
    rate = {
        name: group["lr"]
        for group in groups
        for name, parameter in encoder.named_parameters()
        if any(parameter is member for member in group["params"])
    }
    assert rate["model.embeddings.word_embeddings.weight"] == pytest.approx(1e-3 * 0.5**3)
    assert rate["model.encoder.layer.0.attention.self.query.weight"] == pytest.approx(1e-3 * 0.5**2)
    assert rate["model.encoder.layer.1.output.dense.bias"] == pytest.approx(1e-3 * 0.5)
    assert rate["model.encoder.layer.2.output.dense.weight"] == rate["model.pooler.dense.weight"] == 1e-3
    head_groups = [group for group in groups if any(parameter is group["params"][0] for parameter in head.parameters())]
    assert {group["lr"] for group in head_groups} == {5e-3}
    decay = {id(parameter): group["weight_decay"] for group in groups for parameter in group["params"]}
    assert decay[id(encoder.model.encoder.layer[0].output.LayerNorm.weight)] == 0.0
    assert decay[id(encoder.model.encoder.layer[0].output.dense.bias)] == 0.0
    assert decay[id(encoder.model.encoder.layer[0].output.dense.weight)] == 0.01
    every = [parameter for group in groups for parameter in group["params"]]
    assert len(every) == len({id(parameter) for parameter in every}) == len(list(encoder.parameters())) + 2


def test_without_decay_the_module_keeps_four_groups_and_skips_frozen_weights() -> None:
    encoder = _tiny_bert()
    module = EmotionClassifier(encoder, create_head("linear", 32, 3, {}), num_labels=3, lr=1e-3, head_lr=1e-2)
    assert [(group["lr"], group["weight_decay"]) for group in module.parameter_groups()] == [
        (1e-3, 0.01),
        (1e-3, 0.0),
        (1e-2, 0.01),
        (1e-2, 0.0),
    ]
    frozen = EmotionClassifier(
        _tiny_bert(), create_head("linear", 32, 3, {}), num_labels=3, lr=1e-3, freeze_encoder=True, layer_lr_decay=0.8
    )
    assert {group["lr"] for group in frozen.parameter_groups()} == {1e-3}
    assert sum(len(group["params"]) for group in frozen.parameter_groups()) == 2


def test_reinitialising_changes_only_the_top_layers() -> None:
    encoder = _tiny_bert()
    before = {name: parameter.detach().clone() for name, parameter in encoder.named_parameters()}
    encoder.reinitialise_top_layers(2)
    changed = {name for name, parameter in encoder.named_parameters() if not torch.equal(parameter, before[name])}
    assert changed and all(".layer.1." in name or ".layer.2." in name or ".pooler." in name for name in changed)
    assert any(".layer.1." in name for name in changed) and any(".layer.2." in name for name in changed)
    assert not any(name.endswith("LayerNorm.bias") for name in changed)  # already 0 in a fresh model
    with pytest.raises(UsageError, match="--reinit-layers 4 is more than the encoder's 3 layers"):
        encoder.reinitialise_top_layers(4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"layer_lr_decay": 0.0}, "--layer-lr-decay must be in (0, 1], got 0.0"),
        ({"layer_lr_decay": 1.5}, "--layer-lr-decay must be in (0, 1], got 1.5"),
        ({"reinit_layers": -1}, "--reinit-layers must be >= 0, got -1"),
        ({"reinit_layers": 2, "freeze_encoder": True}, "--reinit-layers needs a trained encoder"),
    ],
)
def test_bad_fine_tuning_settings_are_usage_errors(changes: dict, message: str) -> None:
    with pytest.raises(UsageError) as error:
        RunConfig(**changes)
    assert message in str(error.value)


def test_new_settings_at_their_defaults_keep_earlier_run_identities() -> None:
    config = RunConfig()
    assert "layer_lr_decay" not in config.identity() and "reinit_layers" not in config.identity()
    assert config.with_updates(layer_lr_decay=0.9).config_hash() != config.config_hash()
    assert config.with_updates(reinit_layers=1).config_hash() != config.config_hash()
    assert RunConfig.from_json(config.with_updates(reinit_layers=1).to_json()).reinit_layers == 1


@pytest.mark.slow
def test_e5_small_trains_exports_to_onnx_and_predicts(e5_folder: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed (pip install 'ko-emotion-bench[onnx]')")
    results = tmp_path / "results"
    code, _, err = run_cli(
        [
            "run",
            "--encoder",
            "e5-small",
            "--encoder-path",
            str(e5_folder),
            "--data",
            "sample",
            "--train-limit",
            "90",
            "--epochs",
            "1",
            "--max-len",
            "32",
            "--batch-size",
            "16",
            "--lr",
            "1e-3",
            "--device",
            "cpu",
            "--results",
            str(results),
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    from bench.leaderboard.store import Leaderboard

    with Leaderboard.for_results_dir(results) as board:
        run_id = board.runs()[0].run_id
    code, _, err = run_cli(
        ["export-model", "--results", str(results), "--run", run_id, "--format", "onnx", str(tmp_path / "onnx")], capsys
    )
    assert code == 0, err
    _, from_run, _ = run_cli(["predict", "--results", str(results), "--run", run_id, "--json", *TEXTS], capsys)
    code, from_onnx, err = run_cli(["predict", "--model", str(tmp_path / "onnx"), "--json", *TEXTS], capsys)
    assert code == 0, err
    run_rows = [json.loads(line) for line in from_run.splitlines()]
    onnx_rows = [json.loads(line) for line in from_onnx.splitlines()]
    assert [row["label"] for row in onnx_rows] == [row["label"] for row in run_rows]
    for run_row, onnx_row in zip(run_rows, onnx_rows, strict=True):
        assert (
            max(abs(run_row["probabilities"][k] - onnx_row["probabilities"][k]) for k in run_row["probabilities"])
            < 1e-4
        )
