"""KoBERT (SKTBrain): ``BertModel`` with the project's own sentencepiece tokenizer.

AutoTokenizer is not used: the hub's tokenizer_config names XLNetTokenizer, which
gives wrong ids under transformers 5. Both hub layouts are read:

* ``skt/kobert-base-v1``: ``spiece.model`` whose piece ids are the BERT ids;
* ``monologg/kobert``: ``tokenizer_78b3253a26.model`` + ``vocab.txt`` (id = line of the piece).
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import EncoderUnavailableError
from encoders.base import BuiltEncoder, EncoderRequest
from encoders.hf import build_hf_encoder, count_parameters, fetch_file, model_folder, rebuild_hf_encoder
from encoders.registry import register_encoder
from encoders.spm import SentencePieceTokenizer

HUB_ID = "skt/kobert-base-v1"
SPIECE_FILE = "spiece.model"
VOCAB_FILE = "vocab.txt"
# Published config of skt/kobert-base-v1 (BERT-base on an 8,002-piece vocabulary).
PUBLISHED_CONFIG: dict[str, object] = {
    "vocab_size": 8002,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "pad_token_id": 1,
    "layer_norm_eps": 1e-12,
}


def kobert_tokenizer_from_folder(folder: Path) -> SentencePieceTokenizer:
    """The KoBERT tokenizer of a folder in either hub layout."""
    if (folder / SPIECE_FILE).is_file():
        return SentencePieceTokenizer.from_files(folder / SPIECE_FILE, None, "kobert")
    models = sorted(folder.glob("*.model"))
    if len(models) == 1 and (folder / VOCAB_FILE).is_file():
        return SentencePieceTokenizer.from_files(models[0], folder / VOCAB_FILE, "kobert")
    raise EncoderUnavailableError(
        f"--encoder-path {folder} holds no KoBERT tokenizer: expected {SPIECE_FILE} (skt/kobert-base-v1 layout) "
        f"or one *.model file with {VOCAB_FILE} (monologg/kobert layout)"
    )


def create_kobert_tokenizer(request: EncoderRequest) -> SentencePieceTokenizer:
    """The KoBERT tokenizer from ``--encoder-path`` or the hub."""
    folder = model_folder(request)
    if folder is not None:
        return kobert_tokenizer_from_folder(folder)
    return SentencePieceTokenizer.from_files(fetch_file(request, HUB_ID, SPIECE_FILE), None, "kobert")


@register_encoder(
    "kobert",
    hub_id=HUB_ID,
    description="SKT KoBERT: BERT-base, sentencepiece vocabulary of 8,002 pieces",
    parameter_count=lambda: count_parameters("bert", PUBLISHED_CONFIG),
    tokenizer=create_kobert_tokenizer,
    rebuild=rebuild_hf_encoder,
)
def create_kobert(request: EncoderRequest) -> BuiltEncoder:
    """KoBERT's ``BertModel``; its sentence vector is the pooler output."""
    return build_hf_encoder(request, HUB_ID, "bert", create_kobert_tokenizer(request))
