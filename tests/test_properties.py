"""Property-based tests: loaders, tokenizers, padding and label maps on arbitrary Unicode input."""

from __future__ import annotations

import json
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.data import DataOptions, load_dataset
from bench.data.hygiene import MISSING_VALUE_MARKERS, is_blank
from bench.errors import DataError
from bench.model.padding import PadCollator
from encoders import EncoderRequest, TextTokenizer, create_tokenizer
from encoders.hf import HFTokenizer
from encoders.spm import SentencePieceTokenizer
from tests.conftest import shared_path
from tests.fixtures.data.builders import write_table

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SUFFIXES = (".csv", ".tsv", ".jsonl")
# Text a person could type or paste: anything but control characters and lone surrogates.
PRINTABLE = st.characters(blacklist_categories=("Cc", "Cs"))


def clean(text: str) -> str:
    """What the loaders make of a cell: stripped, NFC."""
    return unicodedata.normalize("NFC", text.strip())


def load_rows(rows: list[tuple[str, str]], suffix: str, **options: object):
    """``rows`` written as a ``suffix`` file and loaded (a temporary folder per example)."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_table(Path(folder) / f"data{suffix}", rows)
        return load_dataset(DataOptions(source=str(path), **options))


def every_example(dataset) -> list:
    return [*dataset.train, *dataset.validation, *dataset.test]


def labelled(texts: list[str], labels: tuple[str, ...] = ("기쁨", "슬픔")) -> list[tuple[str, str]]:
    return [(text, labels[index % len(labels)]) for index, text in enumerate(texts)]


# ----------------------------------------------------------------------------------------- loaders


@PROPERTY
@given(texts=st.lists(st.text(max_size=60), min_size=1, max_size=40), suffix=st.sampled_from(SUFFIXES))
@example(texts=["0"] * 23 + ["\xad"], suffix=".csv")  # a soft hyphen alone draws nothing: an empty text, counted
def test_loaders_never_crash_on_arbitrary_text(texts: list[str], suffix: str) -> None:
    try:
        dataset = load_rows(labelled(texts), suffix)
    except DataError as error:
        assert "\n" not in str(error) and "data" + suffix in str(error)
        return
    assert len(every_example(dataset)) + sum(dataset.report.dropped.values()) == len(texts)


@PROPERTY
@given(
    # Texts that draw something: one made only of whitespace and invisible characters is an empty text.
    texts=st.lists(
        st.text(PRINTABLE, min_size=1, max_size=80).filter(lambda text: not is_blank(text)), min_size=24, max_size=50
    ),
    suffix=st.sampled_from(SUFFIXES),
)
@example(texts=[f"첫 줄 {index}\u2028둘째 줄\u2029셋째" for index in range(24)], suffix=".jsonl")
def test_typed_text_always_loads_and_no_row_is_lost(texts: list[str], suffix: str) -> None:
    dataset = load_rows(labelled(texts), suffix)
    examples = every_example(dataset)
    assert len(examples) == len(texts) and not dataset.report.dropped
    assert sorted(example.text for example in examples) == sorted(clean(text) for text in texts)
    assert dataset.labels == ("기쁨", "슬픔")
    by_text: dict[str, set[str]] = {}
    for text, label in labelled(texts):
        by_text.setdefault(clean(text), set()).add(label)
    assert all(example.label in by_text[example.text] for example in examples)
    assert len({example.uid for example in examples}) == len(examples)


# ------------------------------------------------------------------------------------- label maps

# Single labels: no missing-value marker, nothing blank (a cell of whitespace and invisible characters, e.g. a
# soft hyphen alone, is refused as "no label", as a blank text is an empty one), and no label separator (a cell
# holding one is a label list, multi-label data by the loader's rule; a cell of separators alone is "no label").
LABEL = (
    st.text(PRINTABLE, min_size=1, max_size=12)
    .map(str.strip)
    .filter(lambda label: not is_blank(label) and label.lower() not in MISSING_VALUE_MARKERS and "," not in label)
)


@PROPERTY
@given(
    mapping=st.dictionaries(
        LABEL, st.one_of(st.none(), st.sampled_from(["기쁨", "슬픔", "분노"]), LABEL), min_size=2, max_size=6
    ),
    suffix=st.sampled_from([".json", ".yaml"]),
    form=st.sampled_from(["NFC", "NFD"]),
)
def test_label_maps_round_trip(mapping: dict[str, str | None], suffix: str, form: str) -> None:
    sources = sorted({clean(source) for source in mapping})
    targets = {clean(source): None if target is None else clean(target) for source, target in mapping.items()}
    kept = sorted({target for target in targets.values() if target is not None})
    rows = [(f"{label} 문장 {index}", label) for label in sources for index in range(12)]
    as_written = {
        unicodedata.normalize(form, source): None if target is None else unicodedata.normalize(form, target)
        for source, target in mapping.items()
    }
    with tempfile.TemporaryDirectory() as folder:
        map_path = Path(folder) / f"map{suffix}"
        if suffix == ".json":
            map_path.write_text(json.dumps(as_written, ensure_ascii=False), encoding="utf-8")
        else:
            map_path.write_text(yaml.safe_dump(as_written, allow_unicode=True), encoding="utf-8")
        data = write_table(Path(folder) / "data.csv", rows)
        try:
            dataset = load_dataset(DataOptions(source=str(data), label_map=str(map_path)))
        except DataError as error:
            # Only the class checks may refuse a mapped dataset: fewer than two labels, or too small ones.
            assert len(kept) < 2 or "too few examples" in str(error), error
            return
    assert dataset.labels == tuple(kept)
    for loaded in every_example(dataset):
        source = loaded.text.rsplit(" 문장 ", 1)[0]
        assert loaded.label == targets[source]
    dropped = sum(12 for source in sources if targets[source] is None)
    assert dataset.report.dropped.get("dropped by label map", 0) == dropped
    label_ids = {label: index for index, label in enumerate(dataset.labels)}
    assert [dataset.labels[label_ids[label]] for label in kept] == kept


# -------------------------------------------------------------------------------------- tokenizers


@pytest.fixture(scope="module")
def scratch_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> TextTokenizer:
    """The scratch tokenizer trained on the bundled sample data."""
    texts = [example.text for example in load_dataset(DataOptions()).train]
    return create_tokenizer(EncoderRequest("scratch", train_texts=texts, cache_dir=tmp_path_factory.mktemp("cache")))


TOKENIZERS = {
    "scratch": None,
    "kobert": ("kobert", "models/kobert"),
    "koelectra": ("koelectra-small", "models/koelectra-small-v3"),
}


@pytest.fixture(scope="module", params=list(TOKENIZERS))
def tokenizer(request: pytest.FixtureRequest, scratch_tokenizer: TextTokenizer) -> TextTokenizer:
    spec = TOKENIZERS[request.param]
    if spec is None:
        return scratch_tokenizer
    name, folder = spec
    return create_tokenizer(EncoderRequest(name, path=shared_path(folder)))


def special_ids(tokenizer: TextTokenizer) -> tuple[int, int]:
    """The ids of [CLS] and [SEP]."""
    if isinstance(tokenizer, SentencePieceTokenizer):
        return tokenizer.cls_id, tokenizer.sep_id
    assert isinstance(tokenizer, HFTokenizer)
    return tokenizer.hf.cls_token_id, tokenizer.hf.sep_token_id


@PROPERTY
@given(text=st.text(max_size=200), max_len=st.integers(8, 64))
def test_tokenizers_never_crash_and_ids_stay_in_the_vocabulary(
    tokenizer: TextTokenizer, text: str, max_len: int
) -> None:
    cls_id, sep_id = special_ids(tokenizer)
    encoding = tokenizer.encode(text, max_len=max_len)
    ids = encoding.ids
    assert 2 <= len(ids) <= max_len
    assert all(0 <= token < tokenizer.vocab_size for token in ids)
    assert ids[0] == cls_id and ids[-1] == sep_id
    assert len(encoding.token_type_ids) == len(ids) == len(encoding.pieces)
    assert tokenizer.encode_batch([text, "오늘 기분이 좋다"], max_len)[0] == ids, "batch and single paths agree"
    full = tokenizer.encode(text).ids
    if len(full) <= max_len:
        assert ids == full
    else:  # cut: the first max_len - 1 ids of the full encoding, then [SEP]
        assert ids[:-1] == full[: max_len - 1]
    tokenizer.tokenize(text)


@PROPERTY
@given(
    sequences=st.lists(st.lists(st.integers(1, 30_000), min_size=1, max_size=40), min_size=1, max_size=12),
    pad_id=st.integers(0, 3),
    as_arrays=st.booleans(),
)
def test_padding_keeps_ids_and_masks_match_lengths(sequences: list[list[int]], pad_id: int, as_arrays: bool) -> None:
    examples = [(index, np.asarray(ids) if as_arrays else ids, index % 3) for index, ids in enumerate(sequences)]
    batch = PadCollator(pad_id)(examples)
    lengths = [len(ids) for ids in sequences]
    assert batch["input_ids"].shape == (len(sequences), max(lengths))
    assert batch["attention_mask"].sum(dim=1).tolist() == lengths
    for row, ids in enumerate(sequences):
        assert batch["input_ids"][row, : len(ids)].tolist() == ids
        assert batch["attention_mask"][row, : len(ids)].all() and not batch["attention_mask"][row, len(ids) :].any()
        assert (batch["input_ids"][row, len(ids) :] == pad_id).all()
    assert batch["index"].tolist() == list(range(len(sequences)))
    assert batch["labels"].tolist() == [index % 3 for index in range(len(sequences))]
