"""``kote:PATH`` (KOTE's folder of headerless TSV files, 44 emotions) and multi-label tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.data import DataOptions, SplitDataset, limit_train, load_dataset
from bench.data.kote import KOTE_LABELS
from bench.data.split import SPLITS
from bench.errors import DataError, UsageError
from tests.fixtures.data.builders import kote_lines, write_kote_dir


def all_examples(dataset: SplitDataset) -> list:
    return [example for name in SPLITS for example in getattr(dataset, name)]


def test_kote_labels_are_the_published_list_in_order() -> None:
    assert len(KOTE_LABELS) == len(set(KOTE_LABELS)) == 44
    assert KOTE_LABELS[:3] == ("불평/불만", "환영/호의", "감동/감탄")
    assert KOTE_LABELS[24] == "없음" and KOTE_LABELS[32] == "흐뭇함(귀여움/예쁨)" and KOTE_LABELS[-1] == "안심/신뢰"


def test_kote_uses_the_given_splits_and_maps_indices_to_names(tmp_path: Path) -> None:
    folder = write_kote_dir(tmp_path / "KOTE", train=120, validation=20, test=20)
    dataset = load_dataset(DataOptions(source=f"kote:{folder}"))
    assert dataset.name == "kote:KOTE"
    assert dataset.task == "multilabel" and dataset.multilabel
    assert dataset.report.rows == {"train": 120, "validation": 20, "test": 20}
    assert dataset.report.split_rule == "given splits: train, validation and test files as given"
    # Line 2 of train.tsv: "2<TAB>...<TAB>2,4,6" → labels 2, 4 and 6 of the published list.
    second = next(example for example in dataset.train if example.uid == "train#2")
    assert second.labels == (KOTE_LABELS[2], KOTE_LABELS[4], KOTE_LABELS[6])
    assert second.label == ",".join(second.labels)
    assert second.text == "이런 일이 또 생기다니 2번"
    assert all(example.uid.startswith("val#") for example in dataset.validation)
    assert set(dataset.labels) <= set(KOTE_LABELS)
    assert list(dataset.labels) == [label for label in KOTE_LABELS if label in dataset.labels]  # published order


def test_kote_without_val_splits_10_percent_of_train(tmp_path: Path) -> None:
    folder = write_kote_dir(tmp_path / "KOTE", train=200, validation=None, test=20)
    dataset = load_dataset(DataOptions(source=f"kote:{folder}"))
    assert dataset.report.rows == {"train": 180, "validation": 20, "test": 20}
    assert all(example.uid.startswith("train#") for example in dataset.train + dataset.validation)
    assert dataset.report.split_rule == "given splits: test file as given, validation 10 % of the training file"


@pytest.mark.parametrize("missing", ["train.tsv", "test.tsv"])
def test_kote_without_train_or_test_is_a_one_line_error(tmp_path: Path, missing: str) -> None:
    folder = write_kote_dir(tmp_path / "KOTE")
    (folder / missing).unlink()
    with pytest.raises(DataError, match=rf"KOTE: no {missing} in the KOTE folder"):
        load_dataset(DataOptions(source=f"kote:{folder}"))


def test_kote_rejects_bad_label_indices_and_columns(tmp_path: Path) -> None:
    folder = write_kote_dir(tmp_path / "KOTE")
    lines = kote_lines(20, 500)
    lines[3] = "503\t문장이에요\t2,44\n"
    (folder / "test.tsv").write_text("".join(lines), encoding="utf-8")
    with pytest.raises(
        DataError,
        match=r"test\.tsv: row 4: label indices must be comma-separated numbers 0 to 43 "
        r"\(found '2,44'\)",
    ):
        load_dataset(DataOptions(source=f"kote:{folder}"))
    (folder / "test.tsv").write_text("1\t문장\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.tsv: expected 3 tab-separated columns \(id, text, label indices\)"):
        load_dataset(DataOptions(source=f"kote:{folder}"))
    with pytest.raises(UsageError, match="kote: data is multi-label"):
        load_dataset(DataOptions(source=f"kote:{folder}", task="single"))


def test_a_label_column_of_lists_is_multilabel_automatically(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    names = ("기쁨", "슬픔", "분노", "놀람")
    rows = [
        f'문장 {i}번,"{names[i % 4]},{names[(i + 1) % 4]}"\n' if i % 3 else f"문장 {i}번,{names[i % 4]}\n"
        for i in range(80)
    ]
    path.write_text("text,label\n" + "".join(rows), encoding="utf-8")
    dataset = load_dataset(DataOptions(source=str(path)))
    assert dataset.task == "multilabel" and dataset.labels == ("기쁨", "놀람", "분노", "슬픔")
    assert sum(dataset.report.rows.values()) == 80
    assert any(len(example.labels) == 2 for example in all_examples(dataset))
    assert all(example.labels == tuple(sorted(example.labels)) for example in all_examples(dataset))
    with pytest.raises(
        DataError,
        match=r"m\.csv: too few examples for a stratified split: .*; each class needs at "
        r"least 10 \(the labels look like lists of labels: read them as multi-label "
        r"with --task multilabel; or merge",
    ):
        load_dataset(DataOptions(source=str(path), task="single"))


def test_the_too_few_examples_error_names_at_most_ten_classes(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    path.write_text("text,label\n" + "".join(f"문장 {i},라벨{i % 50}\n" for i in range(100)), encoding="utf-8")
    with pytest.raises(DataError) as raised:
        load_dataset(DataOptions(source=str(path)))
    assert "and 40 more classes" in str(raised.value) and str(raised.value).count(" has 2") == 10


def test_label_sep_and_an_explicit_task(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    path.write_text(
        "text\tlabel\n" + "".join(f"문장 {i}\t{'기쁨|슬픔' if i % 2 else '분노'}\n" for i in range(60)),
        encoding="utf-8",
    )
    dataset = load_dataset(DataOptions(source=str(path), task="multilabel", label_sep="|"))
    assert dataset.labels == ("기쁨", "분노", "슬픔")
    assert dataset.report.labels["train"]["기쁨"] == dataset.report.labels["train"]["슬픔"]


def test_single_label_lists_with_a_comma_stay_single_label(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "text,label\n" + "".join(f'문장 {i},"{"가난한, 불우한" if i % 2 else "기쁨"}"\n' for i in range(40)),
        encoding="utf-8",
    )
    assert load_dataset(DataOptions(source=str(path))).task == "single"


def test_multilabel_train_limit_keeps_every_stratum(tmp_path: Path) -> None:
    dataset = load_dataset(DataOptions(source=f"kote:{write_kote_dir(tmp_path / 'KOTE', train=300)}"))
    limited = limit_train(dataset, 60, seed=1)
    assert len(limited.train) == 60
    assert all(example.labels for example in limited.train)


def test_inspect_shows_labels_per_example_and_label_frequencies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_kote_dir(tmp_path / "KOTE")
    main(["data", "inspect", f"kote:{folder}", "--json"])
    summary = json.loads(capsys.readouterr().out)
    dataset = load_dataset(DataOptions(source=f"kote:{folder}"))
    per_example = [len(example.labels) for example in all_examples(dataset)]
    assert summary["task"] == "multilabel"
    assert summary["labels_per_example"] == {
        "mean": round(sum(per_example) / len(per_example), 2),
        "max": max(per_example),
    }
    assert summary["labels"]["train"][KOTE_LABELS[2]] == sum(KOTE_LABELS[2] in e.labels for e in dataset.train)
    main(["data", "inspect", f"kote:{folder}"])
    out = capsys.readouterr().out
    assert "Multi-label:" in out and "labels per example" in out and "given splits" in out
