"""A tiny XLM-RoBERTa-shaped folder standing in for e5-small in dry runs and tests.

Same layout as the converted e5-small folder (``config.json`` of an ``xlm-roberta`` model,
``model.safetensors``, ``tokenizer.json`` with ``<s> … </s>`` around each sentence), but a
2-layer, hidden-32 model with random weights and a small Unigram vocabulary trained on the
given sentences, so both ``bench`` and the Trainer script load it offline in a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # XLM-R's ids 0-3, then the mask
STANDIN_ENCODER = "hf:xlm-roberta-stand-in"  # the name bench runs the stand-in under (it is not e5-small)


def make_standin_folder(folder: Path, texts: Sequence[str], *, pieces: int = 1000, max_len: int = 128) -> Path:
    """Write the stand-in model into ``folder`` (created) and return it.

    The vocabulary holds every character of ``texts`` (so none is unknown) and about ``pieces`` longer pieces.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel
    from transformers.utils import logging

    logging.disable_progress_bar()

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    characters = len(set("".join(texts)))
    trainer = trainers.UnigramTrainer(
        vocab_size=characters + pieces + len(SPECIAL_TOKENS), special_tokens=list(SPECIAL_TOKENS), unk_token="<unk>"
    )
    tokenizer.train_from_iterator(texts, trainer)
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=max_len,
    )
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(folder)
    config = XLMRobertaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_len + 2,
        pad_token_id=tokenizer.token_to_id("<pad>"),
        bos_token_id=bos,
        eos_token_id=eos,
    )
    torch.manual_seed(0)
    XLMRobertaModel(config).save_pretrained(folder)
    return folder
