"""Loading every kind of source: sample, plain files, encodings, single-turn, multi-turn and AI Hub."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench.data import DataOptions, SplitDataset, load_dataset
from bench.data.aihub import SUB_EMOTIONS
from bench.data.split import SPLITS
from bench.errors import DataError, UsageError
from tests.fixtures.data.builders import (
    MAJORS,
    SEVEN,
    aihub_frame,
    aihub_json,
    labelled_rows,
    write_aihub_dir,
    write_single_turn,
    write_table,
)


def all_examples(dataset: SplitDataset) -> list:
    return [example for name in SPLITS for example in getattr(dataset, name)]


def label_totals(dataset: SplitDataset) -> Counter:
    return Counter(example.label for example in all_examples(dataset))


def test_sample_is_bundled_and_split_80_10_10() -> None:
    dataset = load_dataset(DataOptions())
    assert dataset.name == "sample"
    assert dataset.labels == MAJORS
    assert dataset.report.rows == {"train": 576, "validation": 72, "test": 72}
    assert all(
        counts == {label: 12 for label in MAJORS}
        for counts in (dataset.report.labels["validation"], dataset.report.labels["test"])
    )
    assert dataset.report.encoding == "utf-8"


def test_merged5_merges_hurt_into_sadness_on_the_sample() -> None:
    dataset = load_dataset(DataOptions(label_scheme="merged5"))
    assert dataset.labels == ("기쁨", "당황", "분노", "불안", "슬픔")
    assert label_totals(dataset)["슬픔"] == 240


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".xlsx"])
def test_every_table_format_loads_the_same_examples(tmp_path: Path, suffix: str) -> None:
    rows = labelled_rows(("기쁨", "슬픔", "분노"), 12)
    dataset = load_dataset(DataOptions(source=str(write_table(tmp_path / f"d{suffix}", rows))))
    assert sorted((e.text, e.label) for e in all_examples(dataset)) == sorted(rows)
    reference = load_dataset(DataOptions(source=str(write_table(tmp_path / "ref.csv", rows))))
    if suffix != ".jsonl":  # JSONL uids are line numbers, the others spreadsheet rows
        assert dataset.fingerprint == reference.fingerprint


@pytest.mark.parametrize(
    "encoding, reported", [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp949", "cp949"), ("euc-kr", "cp949")]
)
def test_korean_encodings_are_detected(tmp_path: Path, encoding: str, reported: str) -> None:
    rows = labelled_rows(("기쁨", "슬픔"), 10)
    dataset = load_dataset(DataOptions(source=str(write_table(tmp_path / "d.csv", rows, encoding=encoding))))
    assert dataset.report.encoding == reported
    assert {e.text for e in all_examples(dataset)} == {text for text, _ in rows}


@pytest.mark.parametrize(
    "columns",
    [
        ("Sentence", "Emotion"),
        ("sentence", "emotion"),
        ("문장", "감정"),
        ("발화", "감정"),
        ("document", "label"),
        ("TEXT", "Label"),
    ],
)
def test_common_column_names_are_detected(tmp_path: Path, columns: tuple[str, str]) -> None:
    path = write_table(tmp_path / "d.csv", labelled_rows(("행복", "슬픔"), 10), columns=columns)
    assert len(all_examples(load_dataset(DataOptions(source=str(path))))) == 20


def test_explicit_columns_and_file_prefix(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "id,body,mood\n" + "".join(f"{i},글 {i},{'좋음' if i % 2 else '나쁨'}\n" for i in range(30)), encoding="utf-8"
    )
    dataset = load_dataset(DataOptions(source=f"file:{path}", text_col="body", label_col="mood"))
    assert dataset.labels == ("나쁨", "좋음")
    assert dataset.name == "file:d.csv"


def test_texts_are_stripped_and_nfc_normalised(tmp_path: Path) -> None:
    decomposed = "\u1100\u1161 나무"  # "가" as conjoining jamo
    rows = [(f"  {decomposed} {i}  ", "기쁨" if i % 2 else "슬픔") for i in range(20)]
    dataset = load_dataset(DataOptions(source=str(write_table(tmp_path / "d.csv", rows))))
    assert all(e.text.startswith("가 나무") and e.text == e.text.strip() for e in all_examples(dataset))


def test_empty_texts_and_blank_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    body = "".join(f"문장 {i},{'기쁨' if i % 2 else '슬픔'}\n" for i in range(20))
    path.write_text("text,label\n" + body + "   ,기쁨\n,슬픔\n\n,\n", encoding="utf-8")
    dataset = load_dataset(DataOptions(source=str(path)))
    assert dataset.report.dropped == {"empty text": 2, "blank row": 2}
    assert len(all_examples(dataset)) == 20


def test_long_texts_are_kept(tmp_path: Path) -> None:
    rows = [("아주 긴 문장 " * 500 + str(i), "기쁨" if i % 2 else "슬픔") for i in range(20)]
    dataset = load_dataset(DataOptions(source=str(write_table(tmp_path / "d.csv", rows))))
    assert max(len(e.text) for e in all_examples(dataset)) > 3000


def test_xlsx_sheet_is_chosen_by_name(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"note": ["x"]}).to_excel(writer, sheet_name="notes", index=False)
        pd.DataFrame(labelled_rows(("기쁨", "슬픔"), 10), columns=["text", "label"]).to_excel(
            writer, sheet_name="data", index=False
        )
    assert len(all_examples(load_dataset(DataOptions(source=str(path), sheet="data")))) == 20


def test_single_turn_ignores_the_junk_columns_of_the_circulating_xlsx(tmp_path: Path) -> None:
    dataset = load_dataset(DataOptions(source=str(write_single_turn(tmp_path / "single.xlsx"))))
    assert dataset.name == "single-turn:single.xlsx"
    assert dataset.labels == SEVEN
    assert label_totals(dataset) == {label: 12 for label in SEVEN}
    assert dataset.report.dropped == {}


def test_single_turn_rejects_labels_outside_its_seven(tmp_path: Path) -> None:
    rows = labelled_rows(SEVEN, 10) + [("이상한 라벨", "기뿜")]
    path = write_table(tmp_path / "s.csv", rows, columns=("Sentence", "Emotion"))
    with pytest.raises(DataError, match=r"s\.csv: labels outside the seven labels .*'기뿜' \(1 row\)"):
        load_dataset(DataOptions(source=str(path)))  # detected from its columns
    with pytest.raises(DataError, match=r"s\.csv: too few examples for a stratified split: '기뿜' has 1;"):
        load_dataset(DataOptions(source=f"file:{path}"))  # a plain file keeps any label
    dataset = load_dataset(DataOptions(source=f"single-turn:{path}", drop_unknown=True))
    assert dataset.report.dropped == {"unknown label": 1}
    assert dataset.labels == SEVEN


@pytest.mark.parametrize("suffix", [".xlsx", ".json"])
def test_aihub_directory_splits_training_into_train_validation_and_tests_on_validation(
    tmp_path: Path, suffix: str
) -> None:
    directory = write_aihub_dir(tmp_path / "aihub", suffix, train_per_major=20, test_per_major=4)
    for source in (f"aihub:{directory}", str(directory)):
        dataset = load_dataset(DataOptions(source=source))
        assert dataset.labels == MAJORS
        assert dataset.report.rows == {"train": 108, "validation": 12, "test": 24}
        assert dataset.report.split_rule == "given splits: test file as given, validation 10 % of the training file"
        assert all(e.uid.startswith("Validation#") and e.text.startswith("검증") for e in dataset.test)
        assert all(e.uid.startswith("Training#") for e in dataset.train + dataset.validation)
        assert dataset.report.labels["validation"] == {label: 2 for label in MAJORS}


def test_aihub_xlsx_and_json_give_the_same_texts_and_labels(tmp_path: Path) -> None:
    for scheme in ("major6", "merged5", "minor"):
        for field in ("first-human", "all-human", "dialogue"):
            loaded = [
                load_dataset(
                    DataOptions(
                        source=f"aihub:{write_aihub_dir(tmp_path / suffix, suffix)}",
                        text_field=field,
                        label_scheme=scheme,
                    )
                )
                for suffix in (".xlsx", ".json")
            ]
            xlsx, json_ = ([(e.text, e.label) for e in d.test] for d in loaded)
            assert xlsx == json_


def test_aihub_text_fields(tmp_path: Path) -> None:
    directory = write_aihub_dir(tmp_path / "aihub", ".json")
    texts = {}
    for field in ("first-human", "all-human", "dialogue"):
        dataset = load_dataset(DataOptions(source=f"aihub:{directory}", text_field=field))
        texts[field] = {e.uid: e.text for e in all_examples(dataset)}
    uid = "Validation#1"  # first dialogue: two human turns only (third turn empty)
    assert texts["first-human"][uid] == "검증 기쁨 첫 말 0"
    assert texts["all-human"][uid] == "검증 기쁨 첫 말 0 기쁨 둘째 말 0"
    assert texts["dialogue"][uid] == "검증 기쁨 첫 말 0 [SEP] 응답 하나 0 [SEP] 기쁨 둘째 말 0 [SEP] 응답 둘 0"
    assert texts["all-human"]["Validation#2"] == "검증 기쁨 첫 말 1 기쁨 둘째 말 1 셋째 말 1"


def test_aihub_label_schemes(tmp_path: Path) -> None:
    directory = write_aihub_dir(tmp_path / "aihub", ".xlsx")
    assert load_dataset(DataOptions(source=f"aihub:{directory}", label_scheme="merged5")).labels == (
        "기쁨",
        "당황",
        "분노",
        "불안",
        "슬픔",
    )
    minor = load_dataset(DataOptions(source=f"aihub:{directory}", label_scheme="minor")).labels
    # 고립된 is a sub-emotion of both 상처 (E43) and 당황 (E51): the major prefix keeps them apart.
    assert minor == ("기쁨/만족스러운", "당황/고립된", "분노/툴툴대는", "불안/두려운", "상처/고립된", "슬픔/우울한")


def test_aihub_release_with_a_fourth_turn_and_a_single_file(tmp_path: Path) -> None:
    path = tmp_path / "감성대화말뭉치(최종데이터)_Training.xlsx"
    aihub_frame(10, turn4=True).to_excel(path, index=False)
    dataset = load_dataset(DataOptions(source=str(path)))
    assert dataset.name == f"aihub:{path.name}"
    assert dataset.report.rows == {"train": 48, "validation": 6, "test": 6}


def test_aihub_json_e_code_table_is_complete() -> None:
    assert sorted(SUB_EMOTIONS) == [f"E{major}{minor}" for major in range(1, 7) for minor in range(10)]


def test_aihub_json_unknown_e_code_is_reported(tmp_path: Path) -> None:
    dialogues = aihub_json(aihub_frame(11))
    dialogues[0]["profile"]["emotion"]["type"] = "E77"
    path = tmp_path / "one.json"
    path.write_text(json.dumps(dialogues, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError, match=r"one\.json: labels outside AI Hub label scheme major6: 'E77' \(1 row\)"):
        load_dataset(DataOptions(source=f"aihub:{path}"))
    assert load_dataset(DataOptions(source=f"aihub:{path}", drop_unknown=True)).report.dropped == {"unknown label": 1}


def test_label_map_maps_and_drops(tmp_path: Path) -> None:
    rows = labelled_rows(SEVEN, 12)
    path = write_table(tmp_path / "s.csv", rows, columns=("Sentence", "Emotion"))
    label_map = tmp_path / "map.yaml"
    negative = {label: "부정" for label in ("공포", "분노", "슬픔", "혐오")}
    mapping = {"행복": "긍정", "놀람": "긍정", "중립": "null"} | negative
    label_map.write_text("".join(f"{source}: {target}\n" for source, target in mapping.items()), encoding="utf-8")
    dataset = load_dataset(DataOptions(source=str(path), label_map=str(label_map)))
    assert dataset.labels == ("긍정", "부정")
    assert dataset.report.dropped == {"dropped by label map": 12}
    assert label_totals(dataset) == {"긍정": 24, "부정": 48}


def test_label_map_as_json_and_unmapped_labels(tmp_path: Path) -> None:
    path = write_table(tmp_path / "d.csv", labelled_rows(("a", "b", "c"), 12))
    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps({"a": "x", "b": "y"}), encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.csv: labels outside label map .*map\.json: 'c' \(12 rows\)"):
        load_dataset(DataOptions(source=str(path), label_map=str(label_map)))
    dataset = load_dataset(DataOptions(source=str(path), label_map=str(label_map), drop_unknown=True))
    assert dataset.labels == ("x", "y") and dataset.report.dropped == {"unknown label": 12}


def test_schemes_for_other_sources(tmp_path: Path) -> None:
    single = write_table(tmp_path / "s.csv", labelled_rows(SEVEN, 10), columns=("Sentence", "Emotion"))
    with pytest.raises(DataError, match=r"s\.csv: label scheme 'merged5' applies to AI Hub emotions"):
        load_dataset(DataOptions(source=str(single), label_scheme="merged5"))
    plain = write_table(tmp_path / "p.csv", labelled_rows(("a", "b"), 10))
    with pytest.raises(DataError, match=r"p\.csv: label scheme 'minor' needs AI Hub sub-emotions"):
        load_dataset(DataOptions(source=str(plain), label_scheme="minor"))
    with pytest.raises(DataError, match=r"p\.csv: label scheme 'merged5' needs the six major emotions"):
        load_dataset(DataOptions(source=str(plain), label_scheme="merged5"))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"label_scheme": "major7"}, "--labels must be one of major6, merged5, minor"),
        ({"text_field": "everything"}, "--text-field must be one of first-human, all-human, dialogue"),
        ({"source": "aihub:"}, "--data 'aihub:' needs a path"),
    ],
)
def test_bad_options_are_usage_errors(changes: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_dataset(DataOptions(**changes))
