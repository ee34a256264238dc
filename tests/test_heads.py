"""Classification heads: padding invariance, gradients, hyperparameters, search spaces, ``bench heads``."""

from __future__ import annotations

import inspect
import json
from typing import Any

import optuna
import pytest
import torch
from torch import nn

from bench.config import RunConfig, sort_params
from bench.errors import UsageError
from encoders.base import EncoderOutput
from heads import create_head, head_class, list_heads, resolve_head_params
from heads.pooling import lengths_from_mask, mask_from_lengths, masked_max, masked_mean, zero_padding

HIDDEN = 16
LABELS = 5
SMALL = {
    "mlp": {"hidden_dim": 12},
    "layernorm-mlp": {"hidden_dim": 12},
    "cnn": {"num_filters": 6},
    "bilstm": {"lstm_hidden": 6},
}


def head_variants() -> list[tuple[str, dict[str, Any]]]:
    """Every registered head with its defaults, each other allowed choice, and the top of each integer range."""
    variants: list[tuple[str, dict[str, Any]]] = []
    for name, cls in list_heads().items():
        variants.append((name, {}))
        for param in cls.hyperparameters:
            space = param.space()
            if space is None or space.kind == "float":
                continue
            values = space.choices if space.kind == "categorical" else (int(space.high),)
            variants.extend((name, {param.name: value}) for value in values if value != param.default)
    return variants


# Derived from the registry, so a new head is covered with no edit here.
HEAD_CONFIGS = head_variants()
CONFIG_IDS = [name + "".join(f"-{value}" for value in params.values()) for name, params in HEAD_CONFIGS]
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU)


def build(name: str, params: dict[str, Any] | None = None, seed: int = 0) -> nn.Module:
    """A small head with fixed initial weights."""
    torch.manual_seed(seed)
    return create_head(name, HIDDEN, LABELS, {**SMALL.get(name, {}), **(params or {})})


def sentence(length: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token states ``(length, HIDDEN)`` and a sentence vector of one fake sentence."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(length, HIDDEN, generator=generator), torch.randn(HIDDEN, generator=generator)


def batch(
    sentences: list[tuple[torch.Tensor, torch.Tensor]], garbage_seed: int = 99, int_mask: bool = False
) -> EncoderOutput:
    """Right-padded features whose padded positions hold large random garbage."""
    width = max(states.size(0) for states, _ in sentences)
    generator = torch.Generator().manual_seed(garbage_seed)
    token_states = 100 * torch.randn(len(sentences), width, HIDDEN, generator=generator)
    lengths = torch.tensor([states.size(0) for states, _ in sentences])
    for row, (states, _) in enumerate(sentences):
        token_states[row, : states.size(0)] = states
    mask = mask_from_lengths(lengths, width)
    return EncoderOutput(
        token_states=token_states,
        attention_mask=mask.long() if int_mask else mask,
        sentence_vector=torch.stack([vector for _, vector in sentences]),
    )


def test_every_registered_head_follows_the_contract() -> None:
    assert {"linear", "mlp", "layernorm-mlp", "cnn", "bilstm"} <= set(list_heads())
    assert {"pooling": "mean"} in [params for name, params in HEAD_CONFIGS if name == "bilstm"]
    for name, cls in list_heads().items():
        assert cls.name == name
        assert cls.description
        assert all(param.help for param in cls.hyperparameters)
        json.dumps(cls.defaults)
        assert resolve_head_params(name, {}) == cls.defaults == {p.name: p.default for p in cls.hyperparameters}
        init = inspect.signature(cls.__init__).parameters
        assert {"hidden_size", "num_labels", *cls.defaults} <= set(init)
        assert set(cls.search_space()) <= {cls.trial_param(param) for param in cls.defaults}


@pytest.mark.parametrize(("name", "params"), HEAD_CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("target_length", [3, 7])
def test_logits_do_not_depend_on_padding(name: str, params: dict[str, Any], target_length: int) -> None:
    head = build(name, params).eval()
    target = sentence(target_length, seed=1)
    shorter, much_longer = sentence(1, seed=2), sentence(4 * target_length + 5, seed=3)
    with torch.no_grad():
        alone = head(batch([target]))[0]
        with_shorter = head(batch([shorter, target], garbage_seed=5))[1]
        with_longer = head(batch([target, much_longer], garbage_seed=6, int_mask=True))[0]
    torch.testing.assert_close(with_shorter, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(with_longer, alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("name", "params"), HEAD_CONFIGS, ids=CONFIG_IDS)
def test_gradients_reach_every_parameter_and_never_padding(name: str, params: dict[str, Any]) -> None:
    head = build(name, params).train()
    features = batch([sentence(length, seed=length) for length in (1, 2, 5, 9)])
    features.token_states.requires_grad_(True)
    features.sentence_vector.requires_grad_(True)
    logits = head(features)
    assert logits.shape == (4, LABELS)
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    for param_name, parameter in head.named_parameters():
        assert parameter.grad is not None, param_name
        assert torch.count_nonzero(parameter.grad) > 0, param_name
    token_grad = features.token_states.grad
    if token_grad is not None:
        padding = ~features.attention_mask.bool()
        assert torch.count_nonzero(token_grad[padding]) == 0
        assert torch.count_nonzero(token_grad[~padding]) > 0


def test_cnn_handles_sentences_shorter_than_its_widest_kernel() -> None:
    head = build("cnn", {"kernel_sizes": "2,3,4"}).eval()
    one_token = batch([sentence(1, seed=7), sentence(1, seed=8)])
    with torch.no_grad():
        logits = head(one_token)
        padded = head(batch([sentence(1, seed=7), sentence(10, seed=9)]))
    assert logits.shape == (2, LABELS)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(padded[0], logits[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_bilstm_pooling_matches_the_lstm_on_the_unpadded_sentence(pooling: str) -> None:
    head = build("bilstm", {"pooling": pooling}).eval()
    target = sentence(6, seed=4)
    with torch.no_grad():
        logits = head(batch([sentence(11, seed=5), target]))[1]
        outputs, (final_hidden, _) = head.lstm(target[0].unsqueeze(0))
        pooled = {
            "last": torch.cat([final_hidden[-2], final_hidden[-1]], dim=1),
            "mean": outputs.mean(dim=1),
            "max": outputs.amax(dim=1),
        }[pooling]
        expected = head.classifier(pooled)[0]
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_bilstm_poolings_differ() -> None:
    features = batch([sentence(5, seed=1), sentence(3, seed=2)])
    with torch.no_grad():
        logits = [build("bilstm", {"pooling": pooling}).eval()(features) for pooling in ("last", "mean", "max")]
    assert not torch.allclose(logits[0], logits[1])
    assert not torch.allclose(logits[1], logits[2])


@pytest.mark.parametrize("name", ["mlp", "layernorm-mlp"])
def test_an_activation_sits_between_stacked_linear_layers(name: str) -> None:
    leaves = [module for module in build(name).modules() if not list(module.children())]
    linear_positions = [index for index, module in enumerate(leaves) if isinstance(module, nn.Linear)]
    assert len(linear_positions) == 2
    first, second = linear_positions
    assert any(isinstance(module, ACTIVATIONS) for module in leaves[first + 1 : second])


def test_mlp_is_not_an_affine_map() -> None:
    head = build("mlp").eval()
    left, right = sentence(1, seed=1), sentence(1, seed=2)
    middle = (left[0], (left[1] + right[1]) / 2)
    with torch.no_grad():
        at_ends = head(batch([left, right]))
        at_middle = head(batch([middle]))[0]
    assert (at_middle - at_ends.mean(dim=0)).abs().max() > 1e-3


def test_pooling_ignores_padding() -> None:
    states = torch.tensor([[[-1.0], [-3.0], [1e9]], [[2.0], [float("nan")], [float("inf")]]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert lengths_from_mask(mask).tolist() == [2, 1]
    assert masked_max(states, mask).squeeze(-1).tolist() == [-1.0, 2.0]
    assert masked_mean(states, mask).squeeze(-1).tolist() == [-2.0, 2.0]
    assert zero_padding(states, mask.bool()).squeeze(-1).tolist() == [[-1.0, -3.0, 0.0], [2.0, 0.0, 0.0]]
    assert masked_max(states, torch.zeros_like(mask)).squeeze(-1).tolist() == [0.0, 0.0]


def test_unknown_hyperparameter_is_a_usage_error_naming_it() -> None:
    with pytest.raises(UsageError, match="hiden_dim"):
        create_head("mlp", HIDDEN, LABELS, {"hiden_dim": 64})


def test_unknown_head_is_a_usage_error_listing_the_heads() -> None:
    with pytest.raises(UsageError, match="'transformer'.*bilstm, cnn, layernorm-mlp, linear, mlp"):
        create_head("transformer", HIDDEN, LABELS)


@pytest.mark.parametrize(
    ("name", "params", "named"),
    [
        ("cnn", {"kernel_sizes": "2,x"}, "kernel_sizes"),
        ("cnn", {"kernel_sizes": "0,2"}, "kernel_sizes"),
        ("cnn", {"num_filters": 0}, "num_filters"),
        ("bilstm", {"pooling": "median"}, "pooling"),
        ("bilstm", {"lstm_layers": "two"}, "lstm_layers"),
        ("layernorm-mlp", {"activation": "swish"}, "activation"),
        ("mlp", {"hidden_dim": 2.5}, "hidden_dim"),
        ("linear", {"dropout": 1.5}, "dropout"),
        ("linear", {"dropout": True}, "dropout"),
    ],
)
def test_invalid_hyperparameter_values_are_usage_errors_naming_them(
    name: str, params: dict[str, Any], named: str
) -> None:
    with pytest.raises(UsageError, match=named):
        create_head(name, HIDDEN, LABELS, params)


def test_command_line_values_are_converted_to_the_defaults_types() -> None:
    assert resolve_head_params("mlp", {"hidden_dim": "128", "dropout": "0.2"}) == {"hidden_dim": 128, "dropout": 0.2}
    assert resolve_head_params("cnn", {"kernel_sizes": [3, 5]})["kernel_sizes"] == "3,5"
    assert resolve_head_params("cnn", {"kernel_sizes": 3})["kernel_sizes"] == "3"
    assert resolve_head_params("linear", {"dropout": 0})["dropout"] == 0.0
    head = create_head("cnn", HIDDEN, LABELS, {"kernel_sizes": " 3, 5 ", "num_filters": "4"})
    assert [conv.kernel_size for conv in head.convs] == [(3,), (5,)]


@pytest.mark.parametrize("name", sorted(list_heads()))
def test_suggested_hyperparameters_build_the_head(name: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    features = batch([sentence(4, seed=1), sentence(2, seed=2)])
    suggested: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        params = head_class(name).suggest(trial)
        suggested.append(params)
        logits = create_head(name, HIDDEN, LABELS, params)(features)
        return float(logits.detach().sum())

    optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).optimize(objective, n_trials=3)
    assert len(suggested) == 3
    for params in suggested:
        assert set(params) == set(head_class(name).defaults)
        assert resolve_head_params(name, json.loads(json.dumps(params))) == params
        config = RunConfig(head=name, head_params=sort_params(params))
        assert RunConfig.from_json(config.to_json()).config_hash() == config.config_hash()
        hash(config)


def test_one_study_can_search_over_all_heads() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    heads_seen: set[str] = set()

    def objective(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("head", sorted(list_heads()))
        heads_seen.add(name)
        head = create_head(name, HIDDEN, LABELS, head_class(name).suggest(trial))
        return float(sum(parameter.numel() for parameter in head.parameters()))

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=4))
    study.optimize(objective, n_trials=12)
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)
    assert len(heads_seen) >= 3


def test_bench_heads_lists_every_head_with_its_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.cli.app import app
    from bench.cli.heads import heads_command

    assert "heads" in [command.name for command in app.registered_commands]
    heads_command()
    output = capsys.readouterr().out
    for name, cls in list_heads().items():
        assert name in output
        for param, default in cls.defaults.items():
            assert f"{param}={default}" in output
    assert "last|mean|max" in output


def test_a_declaration_is_checked_when_the_head_is_written() -> None:
    from heads import Hyperparameter

    with pytest.raises(TypeError, match="its default 5 must be at least 10"):
        Hyperparameter("width", 5, "Width.", low=10)
    with pytest.raises(TypeError, match="rule_text"):
        Hyperparameter("sizes", "2,3", "Sizes.", rule=bool)
    with pytest.raises(TypeError, match="bool, int, float or str"):
        Hyperparameter("sizes", [2, 3], "Sizes.")  # type: ignore[arg-type]
    flag = Hyperparameter("residual", False, "Add the input.")
    assert flag.resolve("x", "yes") is True and flag.space() is None
    with pytest.raises(UsageError, match="residual must be bool, got 'maybe'"):
        flag.resolve("x", "maybe")
