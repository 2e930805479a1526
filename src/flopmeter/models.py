"""Build a model from a source string (``torchvision:resnet50``, ``timm:...``,
``transformers:LlamaConfig``, ``path/to/file.py:build``), never downloading weights.

Optional libraries are imported here, lazily, only for the source that needs them.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .inputs import InputSpec, parse_spec


class ModelSourceError(ValueError):
    """The model source string is malformed, names nothing, or needs a missing library."""


@dataclass
class LoadedModel:
    """A built model with the inputs its library documents as its default."""

    model: torch.nn.Module
    name: str
    default_inputs: list[InputSpec] = field(default_factory=list)


SOURCES = ("torchvision", "timm", "transformers")


def load_model(source: str, *, overrides: dict[str, Any] | None = None, meta: bool = False) -> LoadedModel:
    """Build the model ``source`` names (on the meta device when ``meta``)."""
    kind, _, name = source.partition(":")
    if kind in SOURCES and not name:
        raise ModelSourceError(f"model source {source!r} has no name after '{kind}:'")
    device = torch.device("meta") if meta else nullcontext()
    with device:
        if kind == "torchvision":
            return _torchvision(name, overrides or {})
        if kind == "timm":
            return _timm(name, overrides or {})
        if kind == "transformers":
            return _transformers(name, overrides or {})
        if ".py:" in source or source.endswith(".py"):
            return _python_file(source, overrides or {})
    raise ModelSourceError(
        f"unknown model source {source!r}; expected torchvision:NAME, timm:NAME, "
        f"transformers:CONFIGCLASS (or a config.json / model directory), or FILE.py:CALLABLE"
    )


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ModelSourceError(f"{module} is not installed: pip install 'flopmeter[{extra}]'") from error


def _unknown(kind: str, name: str, known: list[str]) -> ModelSourceError:
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; {len(known)} names are known"
    return ModelSourceError(f"unknown {kind} model {name!r}{hint}")


def _check_known(kind: str, name: str, known: list[str]) -> None:
    if name not in known:
        raise _unknown(kind, name, known)


def _torchvision(name: str, overrides: dict[str, Any]) -> LoadedModel:
    models = _require("torchvision.models", "vision")
    _check_known("torchvision", name, models.list_models())
    model = models.get_model(name, weights=None, **overrides)
    size = 224
    try:  # the documented input size: the crop of the default weights' transforms (no download)
        size = int(models.get_model_weights(name).DEFAULT.transforms().crop_size[0])
    except Exception:  # models without published weights keep 224
        size = 299 if "inception" in name else 224
    return LoadedModel(model.eval(), f"torchvision:{name}", [InputSpec((1, 3, size, size))])


def _timm(name: str, overrides: dict[str, Any]) -> LoadedModel:
    timm = _require("timm", "vision")
    _check_known("timm", name, timm.list_models())
    model = timm.create_model(name, pretrained=False, **overrides)
    size = tuple(getattr(model, "pretrained_cfg", {}).get("input_size", (3, 224, 224)))
    return LoadedModel(model.eval(), f"timm:{name}", [InputSpec((1, *size))])


def _transformers(name: str, overrides: dict[str, Any]) -> LoadedModel:
    transformers = _require("transformers", "transformers")
    path = Path(name)
    if path.exists():
        config_file = path / "config.json" if path.is_dir() else path
        try:
            data = json.loads(config_file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ModelSourceError(
                f"cannot read a transformers config from {config_file}: {error}"
            ) from error
        data.update(overrides)
        model_type = data.get("model_type")
        if not model_type:
            raise ModelSourceError(f"{config_file} has no 'model_type'; is it a transformers config.json?")
        config = transformers.AutoConfig.for_model(**data)
    else:
        config_class = getattr(transformers, name, None)
        if not (isinstance(config_class, type) and issubclass(config_class, transformers.PretrainedConfig)):
            known = [n for n in dir(transformers) if n.endswith("Config") and n != "PretrainedConfig"]
            raise _unknown("transformers config", name, known)
        config = config_class(**overrides)
    model = transformers.AutoModel.from_config(config)
    return LoadedModel(model.eval(), f"transformers:{name}", _transformers_inputs(config))


def _transformers_inputs(config: Any) -> list[InputSpec]:
    length = min(128, int(getattr(config, "max_position_embeddings", 128) or 128))
    if getattr(config, "model_type", "") == "whisper":
        frames = 2 * int(getattr(config, "max_source_positions", 1500))
        return [
            InputSpec((1, int(config.num_mel_bins), frames), "float32", "input_features"),
            InputSpec((1, length), "int64", "decoder_input_ids"),
        ]
    specs = [InputSpec((1, length), "int64", "input_ids")]
    if getattr(config, "is_encoder_decoder", False):
        specs.append(InputSpec((1, length), "int64", "decoder_input_ids"))
    return specs


def _python_file(source: str, overrides: dict[str, Any]) -> LoadedModel:
    file_name, attribute = (source, "") if source.endswith(".py") else source.rsplit(":", 1)
    path = Path(file_name)
    if not path.is_file():
        raise ModelSourceError(f"no such Python file: {file_name}")
    spec = importlib.util.spec_from_file_location(f"flopmeter_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ModelSourceError(f"cannot import {file_name}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    if not attribute:
        raise ModelSourceError(f"{source!r}: name the class or function to call, as FILE.py:CALLABLE")
    factory: Callable[..., Any] | None = getattr(module, attribute, None)
    if not callable(factory):
        names = [n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise _unknown(f"callable in {file_name}", attribute, names)
    model = factory(**overrides)
    if not isinstance(model, torch.nn.Module):
        raise ModelSourceError(f"{source!r} returned {type(model).__name__}, expected a torch.nn.Module")
    examples = [parse_spec(s) if isinstance(s, str) else s for s in getattr(module, "EXAMPLE_INPUTS", [])]
    return LoadedModel(model.eval(), source, examples)


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as JSON when it parses (ints, floats, bools,
    lists), else as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.isidentifier():
        raise ModelSourceError(f"bad --set {text!r}: expected KEY=VALUE, e.g. num_hidden_layers=80")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw
