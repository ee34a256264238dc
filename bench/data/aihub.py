"""AI Hub 감성 대화 말뭉치 as users receive it: the Training/Validation ``.xlsx`` or ``.json`` files.

Each dialogue is one example. Its text is, by ``text_field``:

* ``first-human``: the first non-empty human turn;
* ``all-human`` (default): the human turns joined with a space;
* ``dialogue``: human and system turns in order, joined with ``" [SEP] "``.

``[SEP]`` is written as plain text; whether it becomes the separator token is
the tokenizer's business. KoELECTRA's WordPiece (and ``hf:`` tokenizers that
declare ``[SEP]`` special) map it to the separator id; the KoBERT
sentencepiece and ``scratch`` tokenizers read it as ordinary pieces
(``▁[ S E P ]``), so for them ``dialogue`` texts carry a textual marker only.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.data.hygiene import drop_unusable_rows
from bench.data.labels import aihub_labels
from bench.data.readers import Table, check_file, clean_text, decode_file, read_table
from bench.errors import DataError, UsageError
from bench.files import file_problem

TEXT_FIELDS = ("first-human", "all-human", "dialogue")
TURN_SEPARATOR = " [SEP] "
MAJOR_COLUMN = "감정_대분류"
MINOR_COLUMN = "감정_소분류"
_HUMAN = re.compile(r"^사람문장(\d+)$")
_SYSTEM = re.compile(r"^시스템응답(\d+)$")
_JSON_TURN = re.compile(r"^([HS])S(\d+)$")
_E_CODE = re.compile(r"^E([1-6])\d$")
_PARENTHESIS = re.compile(r"\(.*\)$")

# Tens digit of an E-code → major emotion.
MAJOR_BY_DIGIT = {"1": "분노", "2": "슬픔", "3": "불안", "4": "상처", "5": "당황", "6": "기쁨"}
# E-code → sub-emotion, as AI Hub publishes it. The xlsx release writes
# 고립된(당황한) and 혼란스러운(당황한) without the parenthesis, so labels drop it.
SUB_EMOTIONS = {
    "E10": "분노",
    "E11": "툴툴대는",
    "E12": "좌절한",
    "E13": "짜증내는",
    "E14": "방어적인",
    "E15": "악의적인",
    "E16": "안달하는",
    "E17": "구역질 나는",
    "E18": "노여워하는",
    "E19": "성가신",
    "E20": "슬픔",
    "E21": "실망한",
    "E22": "비통한",
    "E23": "후회되는",
    "E24": "우울한",
    "E25": "마비된",
    "E26": "염세적인",
    "E27": "눈물이 나는",
    "E28": "낙담한",
    "E29": "환멸을 느끼는",
    "E30": "불안",
    "E31": "두려운",
    "E32": "스트레스 받는",
    "E33": "취약한",
    "E34": "혼란스러운",
    "E35": "당혹스러운",
    "E36": "회의적인",
    "E37": "걱정스러운",
    "E38": "조심스러운",
    "E39": "초조한",
    "E40": "상처",
    "E41": "질투하는",
    "E42": "배신당한",
    "E43": "고립된",
    "E44": "충격 받은",
    "E45": "가난한, 불우한",
    "E46": "희생된",
    "E47": "억울한",
    "E48": "괴로워하는",
    "E49": "버려진",
    "E50": "당황",
    "E51": "고립된(당황한)",
    "E52": "남의 시선을 의식하는",
    "E53": "외로운",
    "E54": "열등감",
    "E55": "죄책감의",
    "E56": "부끄러운",
    "E57": "혐오스러운",
    "E58": "한심한",
    "E59": "혼란스러운(당황한)",
    "E60": "기쁨",
    "E61": "감사하는",
    "E62": "신뢰하는",
    "E63": "편안한",
    "E64": "만족스러운",
    "E65": "흥분",
    "E66": "느긋",
    "E67": "안도",
    "E68": "신이 난",
    "E69": "자신하는",
}


@dataclass(frozen=True)
class AihubFiles:
    """The files of an ``aihub:`` source: Training and Validation, or one file to split 80/10/10."""

    training: Path
    validation: Path | None


def check_text_field(text_field: str) -> None:
    """Raise :class:`UsageError` unless ``text_field`` is known."""
    if text_field not in TEXT_FIELDS:
        raise UsageError(f"--text-field must be one of {', '.join(TEXT_FIELDS)}, got {text_field!r}")


def locate(path: Path) -> AihubFiles:
    """The Training and Validation files under directory ``path``, or ``path`` itself if it is a file.

    Files are found at any depth by ``training``/``validation`` in their name;
    ``.xlsx`` is preferred over ``.json``; Excel lock files (``~$...``) are ignored.
    """
    if not path.exists():
        problem = file_problem(path)
        raise DataError(f"{path}: {'no such file or directory' if problem == 'no such file' else problem}")
    if path.is_file():
        return AihubFiles(path, None)
    candidates = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in (".xlsx", ".json") and not p.name.startswith(("~$", "."))
    )
    training = _pick(path, candidates, "training")
    validation = _pick(path, candidates, "validation")
    if training is None or validation is None:
        missing = "Training" if training is None else "Validation"
        zips = sorted(p.name for p in path.rglob("*.zip"))
        hint = f"; unzip {', '.join(zips)} first" if zips else "; pass a single file to split it 80/10/10"
        raise DataError(f"{path}: no *_{missing}.xlsx or *_{missing}.json file found{hint}")
    return AihubFiles(training, validation)


def _pick(directory: Path, candidates: list[Path], role: str) -> Path | None:
    matches = [p for p in candidates if role in p.stem.lower()]
    for suffix in (".xlsx", ".json"):
        of_type = [p for p in matches if p.suffix.lower() == suffix]
        if len(of_type) > 1:
            names = ", ".join(str(p.relative_to(directory)) for p in of_type)
            raise DataError(f"{directory}: several {role.title()} {suffix} files ({names}); keep one or pass its path")
        if of_type:
            return of_type[0]
    return None


def is_aihub_table(columns: list[str]) -> bool:
    """Whether a table has the AI Hub xlsx columns."""
    return MAJOR_COLUMN in columns and any(_HUMAN.match(name) for name in columns)


def read_dialogues(
    path: Path, text_field: str, scheme: str, sheet: str | None, dropped: Counter[str]
) -> tuple[pd.DataFrame, str | None]:
    """Examples of one AI Hub ``.json`` (indexed by dialogue number) or table file.

    See :func:`dialogues_from_table`.
    """
    if path.suffix.lower() == ".json":
        turns, majors, minors, encoding = _read_json(path)
        return _examples(path, turns, majors, minors, text_field, scheme, dropped), encoding
    return dialogues_from_table(read_table(path, sheet), text_field, scheme, dropped)


def dialogues_from_table(
    table: Table, text_field: str, scheme: str, dropped: Counter[str]
) -> tuple[pd.DataFrame, str | None]:
    """Examples (columns ``text``, ``label``; indexed by row number) of an AI Hub table, and its encoding.

    ``label`` is under ``scheme`` (see :func:`bench.data.labels.aihub_labels`);
    blank rows and empty texts are dropped and counted in ``dropped``.
    """
    columns = [str(name) for name in table.frame.columns]
    if not is_aihub_table(columns) or MINOR_COLUMN not in columns:
        raise DataError(
            f"{table.path}: not an AI Hub 감성 대화 table (needs {MAJOR_COLUMN}, {MINOR_COLUMN}, 사람문장1, ...); "
            f"columns found: {', '.join(columns)}"
        )
    renamed: dict[str, str] = {}
    for name in columns:
        for pattern, speaker in ((_HUMAN, "H"), (_SYSTEM, "S")):
            match = pattern.match(name)
            if match:
                renamed[name] = f"{speaker}{int(match.group(1)):02d}"
    turns = table.frame[list(renamed)].rename(columns=renamed).apply(clean_text)
    majors = clean_text(table.frame[MAJOR_COLUMN])
    minors = clean_text(table.frame[MINOR_COLUMN])
    return _examples(table.path, turns, majors, minors, text_field, scheme, dropped), table.encoding


def _examples(
    path: Path,
    turns: pd.DataFrame,
    majors: pd.Series,
    minors: pd.Series,
    text_field: str,
    scheme: str,
    dropped: Counter[str],
) -> pd.DataFrame:
    frame = pd.DataFrame({"text": compose_text(path, turns, text_field), "label": majors}, index=turns.index)
    frame = drop_unusable_rows(path, frame, MAJOR_COLUMN, dropped)
    return frame.assign(label=aihub_labels(frame["label"], minors.loc[frame.index], scheme))


def _read_json(path: Path) -> tuple[pd.DataFrame, pd.Series, pd.Series, str]:
    check_file(path)
    text, encoding = decode_file(path)
    try:
        dialogues = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: invalid JSON at line {error.lineno}: {error.msg}") from None
    if not isinstance(dialogues, list) or not dialogues:
        raise DataError(f"{path}: expected a non-empty JSON list of dialogues (AI Hub 감성 대화 format)")
    records: list[dict[str, str]] = []
    codes: list[str] = []
    for number, dialogue in enumerate(dialogues, start=1):
        code, content = _dialogue_parts(path, number, dialogue)
        codes.append(code)
        records.append(
            {f"{m[1]}{int(m[2]):02d}": _text(value) for key, value in content.items() if (m := _JSON_TURN.match(key))}
        )
    index = pd.RangeIndex(1, len(dialogues) + 1)
    turns = pd.DataFrame.from_records(records, index=index).fillna("").apply(clean_text)
    code_series = pd.Series(codes, index=index)
    majors = code_series.map(lambda code: MAJOR_BY_DIGIT[code[1]] if _E_CODE.match(code) else code)
    minors = code_series.map(lambda code: _PARENTHESIS.sub("", SUB_EMOTIONS.get(code, code)))
    return turns, majors, minors, encoding


def _dialogue_parts(path: Path, number: int, dialogue: Any) -> tuple[str, dict[str, Any]]:
    """The E-code and the turns of dialogue ``number`` (1-based)."""
    try:
        emotion = dialogue["profile"]["emotion"]
        code = emotion.get("type") or str(emotion["emotion-id"]).rsplit("_", 1)[-1]
        content = dialogue["talk"]["content"]
    except (KeyError, TypeError, AttributeError):
        raise DataError(
            f"{path}: dialogue {number}: expected profile.emotion.type and talk.content (AI Hub 감성 대화 format)"
        ) from None
    if not isinstance(content, dict):
        raise DataError(f"{path}: dialogue {number}: talk.content is not an object")
    return str(code).strip(), content


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def compose_text(path: Path, turns: pd.DataFrame, text_field: str) -> pd.Series:
    """One text per dialogue from turn columns ``H01, S01, H02, ...`` (cleaned strings)."""
    ordered = sorted(turns.columns, key=lambda name: (name[1:], name[0]))
    human = [turns[name] for name in ordered if name.startswith("H")]
    if not human:
        raise DataError(f"{path}: no human turns (사람문장1 / HS01, ...) found")
    if text_field == "first-human":
        text = human[0]
        for turn in human[1:]:
            text = text.where(text != "", turn)
        return text
    if text_field == "all-human":
        return _join_non_empty(human, " ")
    return _join_non_empty([turns[name] for name in ordered], TURN_SEPARATOR)


def _join_non_empty(columns: list[pd.Series], separator: str) -> pd.Series:
    text = columns[0]
    for column in columns[1:]:
        joined = text + separator + column
        text = joined.where((text != "") & (column != ""), text.where(column == "", column))
    return text
