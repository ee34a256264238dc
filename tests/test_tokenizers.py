"""Tokenizers: KoBERT (both hub layouts), KoELECTRA, scratch training/caching, save/load, ``bench tokenize``."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path

import pytest

import bench.cli.encoders  # noqa: F401  (registers the commands)
from bench.cli.app import main
from bench.errors import EncoderUnavailableError, UsageError
from encoders import EncoderRequest, create_tokenizer, load_tokenizer
from encoders import scratch as scratch_module
from encoders.registry import TOKENIZER_MARKER
from encoders.spm import SentencePieceTokenizer, kobert_preprocess
from tests.conftest import shared_path

KOBERT_SENTENCE = "한국어 모델을 공유합니다."
KOBERT_IDS = [2, 4958, 6855, 2046, 7088, 1050, 7843, 54, 3]
KOELECTRA_SENTENCE = "한국어 ELECTRA를 공유합니다."
KOELECTRA_IDS = [2, 11229, 29173, 13352, 25541, 4110, 7824, 17788, 18, 3]
KOBERT_LAYOUTS = ["models/kobert", "models/kobert-monologg"]


def kobert(layout: str) -> SentencePieceTokenizer:
    tokenizer = create_tokenizer(EncoderRequest("kobert", path=shared_path(layout)))
    assert isinstance(tokenizer, SentencePieceTokenizer)
    return tokenizer


def korean_sentences(count: int, seed: int = 0) -> list[str]:
    """Deterministic Korean-looking sentences for training the scratch tokenizer."""
    words = [
        "오늘",
        "날씨가",
        "정말",
        "좋아서",
        "기분이",
        "너무",
        "행복해요",
        "화가",
        "나요",
        "슬퍼서",
        "눈물이",
        "났어요",
        "친구랑",
        "영화를",
        "봤는데",
        "무서웠어",
        "깜짝",
        "놀랐다",
        "진짜",
        "싫어",
        "ㅋㅋ",
        "ㅠㅠ",
    ]
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=rng.randint(3, 9))) + rng.choice([".", "!", "?", ""]) for _ in range(count)]


@pytest.mark.parametrize("layout", KOBERT_LAYOUTS)
def test_kobert_reference_ids(layout: str) -> None:
    tokenizer = kobert(layout)
    encoding = tokenizer.encode(KOBERT_SENTENCE)
    assert encoding.ids == KOBERT_IDS
    assert encoding.token_type_ids == [0] * len(KOBERT_IDS)
    assert encoding.pieces[0] == "[CLS]" and encoding.pieces[-1] == "[SEP]" and "▁한국" in encoding.pieces
    assert tokenizer.encode_batch([KOBERT_SENTENCE], 128) == [KOBERT_IDS]
    assert (tokenizer.pad_id, tokenizer.vocab_size) == (1, 8002)


@pytest.mark.parametrize("layout", KOBERT_LAYOUTS)
def test_kobert_pairs_token_types_and_truncation(layout: str) -> None:
    tokenizer = kobert(layout)
    first, second = tokenizer.encode("한국어"), tokenizer.encode("모델을 공유합니다.")
    pair = tokenizer.encode("한국어", "모델을 공유합니다.")
    assert pair.ids == first.ids + second.ids[1:]  # [CLS] A [SEP] B [SEP]
    assert pair.token_type_ids == [0] * len(first.ids) + [1] * (len(second.ids) - 1)
    truncated = tokenizer.encode("한국어", "모델을 공유합니다.", max_len=6)
    assert len(truncated.ids) == 6 and truncated.ids[0] == 2 and truncated.ids.count(3) == 2 and truncated.ids[-1] == 3
    single = tokenizer.encode(KOBERT_SENTENCE, max_len=5)
    assert single.ids == KOBERT_IDS[:4] + [3]
    assert tokenizer.encode_batch([KOBERT_SENTENCE, ""], 5) == [KOBERT_IDS[:4] + [3], [2, 3]]


def test_kobert_preprocessing_strips_accents_but_keeps_hangul_composed() -> None:
    assert kobert_preprocess("  한국어\t모델을\n\u3000공유  ") == "한국어 모델을 공유"
    assert kobert_preprocess("café ``인용'' ㅋㅋ ㅠㅠ") == 'cafe "인용" ㅋㅋ ㅠㅠ'
    hangul = "감정 분류 데이터셋"
    assert kobert_preprocess(hangul) == hangul and unicodedata.is_normalized("NFC", kobert_preprocess(hangul))


@pytest.mark.parametrize("layout", KOBERT_LAYOUTS)
def test_kobert_batch_equals_one_by_one(layout: str) -> None:
    tokenizer = kobert(layout)
    texts = ["한국어  모델을 공유합니다.", "ㅋㅋㅋ 진짜 웃겨 ♡", "Ünïcödé ``test''", "", "  "]
    assert tokenizer.encode_batch(texts, 64) == [tokenizer.encode(text, max_len=64).ids for text in texts]
    assert tokenizer.encode_batch([], 64) == []


def _original_kobert_ids(texts: list[str], model_file: Path, vocab_file: Path, max_len: int) -> list[list[int]]:
    """The original pipeline: XLNet-style preprocess_text (NFKD accent stripping) + monologg vocab lookup."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    vocab = {piece: index for index, piece in enumerate(vocab_file.read_text(encoding="utf-8").split("\n")[:-1])}

    def preprocess(text: str) -> str:
        text = " ".join(text.strip().split()).replace("``", '"').replace("''", '"')
        return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))

    pieces = processor.encode([preprocess(text) for text in texts], out_type=str)
    return [[2, *[vocab.get(piece, vocab["[UNK]"]) for piece in row][: max_len - 2], 3] for row in pieces]


def test_kobert_layouts_agree_with_each_other_and_the_original_on_every_dataset_sentence() -> None:
    import pandas as pd

    data = shared_path("data/single_turn_7emo.xlsx")
    sentences = pd.read_excel(data, usecols=["Sentence"], engine="openpyxl")["Sentence"].astype(str).tolist()
    assert len(sentences) == 38594
    skt = kobert("models/kobert").encode_batch(sentences, 128)
    monologg = kobert("models/kobert-monologg").encode_batch(sentences, 128)
    mismatches = [index for index, (a, b) in enumerate(zip(skt, monologg, strict=True)) if a != b]
    assert not mismatches, (
        f"{len(mismatches)} sentences differ, first row {mismatches[0]}: {sentences[mismatches[0]]!r}"
    )
    folder = shared_path("models/kobert-monologg")
    original = _original_kobert_ids(sentences, folder / "tokenizer_78b3253a26.model", folder / "vocab.txt", 128)
    assert skt == original


@pytest.mark.parametrize("folder", ["models/koelectra-small-v3", "models/koelectra-base-v3"])
def test_koelectra_reference_ids(folder: str) -> None:
    name = "koelectra-small" if "small" in folder else "koelectra"
    tokenizer = create_tokenizer(EncoderRequest(name, path=shared_path(folder)))
    encoding = tokenizer.encode(KOELECTRA_SENTENCE)
    assert encoding.ids == KOELECTRA_IDS
    assert encoding.pieces[1:5] == ["한국어", "EL", "##EC", "##TRA"]  # cased: tokenizer_config says no lowercasing
    assert tokenizer.encode_batch([KOELECTRA_SENTENCE], 128) == [KOELECTRA_IDS]
    pair = tokenizer.encode("한국어", "공유합니다.")
    assert pair.token_type_ids == [0, 0, 0, 1, 1, 1, 1]
    assert tokenizer.pad_id == 0
    assert tokenizer.encode_batch([KOELECTRA_SENTENCE], 4) == [[2, 11229, 29173, 3]]


def test_scratch_tokenizer_trains_on_small_data_silently_and_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    texts = korean_sentences(500)
    request = EncoderRequest("scratch", train_texts=texts, cache_dir=tmp_path)
    tokenizer = create_tokenizer(request)
    assert capfd.readouterr() == ("", "")  # sentencepiece training logs nothing
    assert isinstance(tokenizer, SentencePieceTokenizer)
    assert tokenizer.pieces[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id) == (
        0,
        1,
        2,
        3,
        4,
    )
    assert 30 < tokenizer.vocab_size <= scratch_module.VOCAB_SIZE
    encoding = tokenizer.encode(texts[0])
    assert encoding.ids[0] == 2 and encoding.ids[-1] == 3 and 1 not in encoding.ids

    cached = tmp_path / "scratch-tokenizer" / scratch_module.texts_digest(texts)
    assert (cached / TOKENIZER_MARKER).is_file()

    def must_not_train(texts: list[str]) -> SentencePieceTokenizer:
        raise AssertionError("the cached tokenizer should be reused")

    monkeypatch.setattr(scratch_module, "train_scratch_tokenizer", must_not_train)
    again = create_tokenizer(request)
    assert again.encode_batch(texts, 32) == tokenizer.encode_batch(texts, 32)
    assert scratch_module.texts_digest(texts[:-1]) != scratch_module.texts_digest(texts)


def test_scratch_tokenizer_training_is_deterministic() -> None:
    texts = korean_sentences(300, seed=2)
    first, second = scratch_module.train_scratch_tokenizer(texts), scratch_module.train_scratch_tokenizer(texts)
    assert first.pieces == second.pieces


def test_scratch_tokenizer_needs_training_texts() -> None:
    with pytest.raises(UsageError, match="trains its tokenizer"):
        create_tokenizer(EncoderRequest("scratch"))
    with pytest.raises(UsageError, match="all empty"):
        create_tokenizer(EncoderRequest("scratch", train_texts=["", "  "]))


def _saved_and_loaded(tokenizer: object, folder: Path) -> object:
    tokenizer.save(folder)  # type: ignore[attr-defined]
    assert json.loads((folder / TOKENIZER_MARKER).read_text(encoding="utf-8"))["kind"]
    return load_tokenizer(folder)


@pytest.mark.parametrize("layout", KOBERT_LAYOUTS)
def test_kobert_tokenizer_save_and_load(layout: str, tmp_path: Path) -> None:
    loaded = _saved_and_loaded(kobert(layout), tmp_path / "saved")
    texts = [KOBERT_SENTENCE, "café ㅋㅋ ♡"]
    assert loaded.encode_batch(texts, 32) == kobert(layout).encode_batch(texts, 32)  # type: ignore[attr-defined]
    # The saved folder is also a valid --encoder-path for kobert.
    again = create_tokenizer(EncoderRequest("kobert", path=tmp_path / "saved"))
    assert again.encode(KOBERT_SENTENCE).ids == KOBERT_IDS


def test_koelectra_and_scratch_tokenizers_save_and_load(tmp_path: Path) -> None:
    koelectra = create_tokenizer(EncoderRequest("koelectra-small", path=shared_path("models/koelectra-small-v3")))
    loaded = _saved_and_loaded(koelectra, tmp_path / "koelectra")
    assert loaded.encode(KOELECTRA_SENTENCE).ids == KOELECTRA_IDS  # type: ignore[attr-defined]
    again = create_tokenizer(EncoderRequest("koelectra-small", path=tmp_path / "koelectra"))
    assert again.encode(KOELECTRA_SENTENCE).ids == KOELECTRA_IDS

    texts = korean_sentences(200, seed=1)
    scratch = create_tokenizer(EncoderRequest("scratch", train_texts=texts, cache_dir=tmp_path / "cache"))
    loaded = _saved_and_loaded(scratch, tmp_path / "scratch")
    assert loaded.encode_batch(texts, 16) == scratch.encode_batch(texts, 16)  # type: ignore[attr-defined]


def test_load_tokenizer_needs_the_marker(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailableError, match=TOKENIZER_MARKER):
        load_tokenizer(tmp_path)
    (tmp_path / TOKENIZER_MARKER).write_text('{"kind": "nonsense"}', encoding="utf-8")
    with pytest.raises(EncoderUnavailableError, match="unknown tokenizer kind"):
        load_tokenizer(tmp_path)


def test_kobert_folder_without_tokenizer_files(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailableError, match="spiece.model"):
        create_tokenizer(EncoderRequest("kobert", path=tmp_path))
    (tmp_path / "spiece.model").write_bytes(b"not a model")
    with pytest.raises(EncoderUnavailableError, match="spiece.model is not a sentencepiece model"):
        create_tokenizer(EncoderRequest("kobert", path=tmp_path))
    (tmp_path / "spiece.model").unlink()
    with pytest.raises(EncoderUnavailableError, match="vocab.txt"):
        create_tokenizer(EncoderRequest("koelectra", path=tmp_path))


def test_bench_tokenize_json(capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_path("models/kobert")
    main(["tokenize", "--encoder", "kobert", "--encoder-path", str(folder), "--json", KOBERT_SENTENCE, "ㅋㅋ 좋아요"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == {"text": KOBERT_SENTENCE, "pieces": first["pieces"], "ids": KOBERT_IDS}
    assert first["pieces"][:2] == ["[CLS]", "▁한국"] and "한국어" in lines[0]  # ensure_ascii=False
    assert json.loads(lines[1])["text"] == "ㅋㅋ 좋아요"


def test_bench_tokenize_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_path("models/koelectra-small-v3")
    main(["tokenize", "-e", "koelectra-small", "--encoder-path", str(folder), KOELECTRA_SENTENCE])
    out = capsys.readouterr().out
    assert "[CLS] 한국어 EL ##EC ##TRA" in out and " ".join(map(str, KOELECTRA_IDS)) in out


def test_bench_tokenize_scratch_and_unknown_encoder_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in (
        (["tokenize", "--encoder", "scratch", "x"], "trains its tokenizer on each run's training split"),
        (["tokenize", "--encoder", "bert", "x"], "unknown encoder 'bert'"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in " ".join(err.split()) and "Traceback" not in err
