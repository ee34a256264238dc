"""KoELECTRA v3 discriminators (monologg): ``ElectraModel`` with a WordPiece fast tokenizer.

ELECTRA has no pooler, so the sentence vector is the ``[CLS]`` state.
"""

from __future__ import annotations

import json

from transformers import ElectraTokenizer

from bench.errors import EncoderUnavailableError
from bench.params import Param
from encoders.base import BuiltEncoder, EncoderRequest
from encoders.hf import (
    HFTokenizer,
    build_hf_encoder,
    count_parameters,
    fetch_file,
    hub_errors,
    model_folder,
    model_source,
    rebuild_hf_encoder,
)
from encoders.registry import register_encoder

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
VOCAB_FILE = "vocab.txt"
SAVED_TOKENIZER_FILE = "tokenizer.json"
_SHARED_CONFIG: dict[str, object] = {
    "vocab_size": 35000,
    "num_hidden_layers": 12,
    "hidden_act": "gelu",
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "pad_token_id": 0,
    "layer_norm_eps": 1e-12,
}
# Published configs of the two discriminators.
PUBLISHED_CONFIGS: dict[str, dict[str, object]] = {
    "koelectra": {
        **_SHARED_CONFIG,
        "embedding_size": 768,
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
    "koelectra-small": {
        **_SHARED_CONFIG,
        "embedding_size": 128,
        "hidden_size": 256,
        "num_attention_heads": 4,
        "intermediate_size": 1024,
    },
}
HUB_IDS = {
    "koelectra": "monologg/koelectra-base-v3-discriminator",
    "koelectra-small": "monologg/koelectra-small-v3-discriminator",
}


def _lowercases(request: EncoderRequest, hub_id: str) -> bool:
    """``do_lower_case`` from tokenizer_config.json; KoELECTRA is cased, so ``False`` when unstated.

    (Lowercasing also strips accents, which would split Hangul into jamo.)
    """
    folder = model_folder(request)
    if folder is not None and not (folder / TOKENIZER_CONFIG_FILE).is_file():
        return False
    path = fetch_file(request, hub_id, TOKENIZER_CONFIG_FILE)
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EncoderUnavailableError(f"{path} is not valid JSON: {error}") from None
    return bool(settings.get("do_lower_case", False)) if isinstance(settings, dict) else False


def create_koelectra_tokenizer(request: EncoderRequest) -> HFTokenizer:
    """The WordPiece tokenizer (vocab.txt, or a saved tokenizer.json) of the KoELECTRA variant ``request.name``."""
    hub_id = HUB_IDS[request.name]
    source = model_source(request, hub_id)
    folder = model_folder(request)
    if folder is None:
        fetch_file(request, hub_id, VOCAB_FILE)
    elif not any((folder / name).is_file() for name in (VOCAB_FILE, SAVED_TOKENIZER_FILE)):
        raise EncoderUnavailableError(
            f"--encoder-path {folder} holds no KoELECTRA tokenizer: "
            f"expected {VOCAB_FILE} (or a saved {SAVED_TOKENIZER_FILE})"
        )
    lowercase = _lowercases(request, hub_id)
    with hub_errors(request, source, "tokenizer"):
        return HFTokenizer(ElectraTokenizer.from_pretrained(source, do_lower_case=lowercase))


# The small discriminator tolerates and needs larger learning rates and more epochs (the standard ranges otherwise).
SMALL_SPACE: dict[str, Param] = {
    "lr": Param.real(3e-5, 3e-4, log=True),
    "head_lr": Param.real(3e-5, 3e-3, log=True),
    "batch_size": Param.choice(32, 64),
    "epochs": Param.integer(3, 8),
}


def _register(name: str, description: str, search_space: dict[str, Param] | None = None) -> None:
    @register_encoder(
        name,
        hub_id=HUB_IDS[name],
        description=description,
        parameter_count=lambda: count_parameters("electra", PUBLISHED_CONFIGS[name]),
        tokenizer=create_koelectra_tokenizer,
        rebuild=rebuild_hf_encoder,
        search_space=search_space,
    )
    def create_koelectra(request: EncoderRequest) -> BuiltEncoder:
        """KoELECTRA's ``ElectraModel``; its sentence vector is the ``[CLS]`` state."""
        return build_hf_encoder(request, HUB_IDS[name], "electra", create_koelectra_tokenizer(request))


_register("koelectra", "KoELECTRA-base v3 discriminator: 768 hidden, 12 layers, WordPiece 35,000")
_register("koelectra-small", "KoELECTRA-small v3 discriminator: 256 hidden, 12 layers, WordPiece 35,000", SMALL_SPACE)
