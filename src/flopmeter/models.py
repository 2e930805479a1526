"""Build a model from a source string (``torchvision:resnet50``, ``timm:...``,
``transformers:LlamaConfig``, ``path/to/file.py:build``), never downloading weights.

Optional libraries are imported here, lazily, only for the source that needs them.
Two kinds of failure: ``ModelSourceError`` (the user's source string or ``--set``
is wrong: exit 2 in the CLI) and ``ModelBuildError`` (the model's own code raised
while building it: exit 1).
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .inputs import DTYPES, InputSpec, as_spec
from .tracing.run import set_mode


class ModelSourceError(ValueError):
    """The model source string is malformed, names nothing, or needs a missing library."""


class ModelBuildError(RuntimeError):
    """The model's own code (a model file, a factory, a library builder) raised."""


@dataclass
class LoadedModel:
    """A built model with the inputs it is built for.

    ``input_kind`` is "tensors" (one argument per spec) or "image_list" (the
    specs' tensors go in one list, as torchvision detection models take them).
    ``notes`` are lines for the user (e.g. "built on the meta device because ...").
    """

    model: torch.nn.Module
    name: str
    default_inputs: list[InputSpec] = field(default_factory=list)
    input_kind: str = "tensors"
    notes: list[str] = field(default_factory=list)
    # a torch.export program's module classes by qualified name (its unflattened modules
    # are all InterpreterModule): the report's rows take these names
    exported_classes: dict[str, str] = field(default_factory=dict)
    # a torch.export program's call: its positional input count and keyword names
    exported_call: tuple[int, tuple[str, ...]] | None = None


SOURCES = ("torchvision", "timm", "transformers")


def load_model(
    source: str, *, overrides: dict[str, Any] | None = None, meta: bool = False, example_inputs: bool = True
) -> LoadedModel:
    """Build the model ``source`` names (on the meta device when ``meta``).
    ``example_inputs`` False: a model file's ``EXAMPLE_INPUTS`` is not read (the
    user gave inputs; theirs replace it entirely)."""
    kind, name = check_source(source)
    device = torch.device("meta") if meta else nullcontext()
    with device:
        if kind == "torchvision":
            return _torchvision(name, overrides or {})
        if kind == "timm":
            return _timm(name, overrides or {})
        if kind == "transformers":
            return _transformers(name, overrides or {}, meta)
        if kind == "exported":
            return _exported_file(source, overrides or {}, meta)
        return _python_file(source, overrides or {}, example_inputs)


def source_kind(source: str) -> str:
    """What a source string names, from its spelling alone (nothing imported, no file
    read): "torchvision", "timm", "transformers" (also a config.json or a folder holding
    one), "file" (FILE.py[:CALLABLE]), "onnx", "exported" (.pt2) or "" (none of these)."""
    kind = source.partition(":")[0]
    if kind in SOURCES:
        return kind
    if ".py:" in source or source.endswith(".py"):
        return "file"
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in (".onnx", ".pt2"):
        return "onnx" if suffix == ".onnx" else "exported"
    if path.suffix == ".json" or (path.is_dir() and (path / "config.json").is_file()):
        return "transformers"
    return ""


def check_source(source: str) -> tuple[str, str]:
    """(kind, name) of a source string, checked without building anything: the
    library is installed and knows the name, the file exists. Raises ModelSourceError."""
    kind = source_kind(source)
    if kind in SOURCES and source.partition(":")[0] == kind:
        name = source.partition(":")[2]
        if not name:
            raise ModelSourceError(f"model source {source!r} has no name after '{kind}:'")
        if kind == "torchvision":
            _check_known("torchvision", name, _require("torchvision.models", "vision").list_models())
        elif kind == "timm":
            _check_known("timm", name, _require("timm", "vision").list_models())
        else:
            _transformers_config_class(name)
        return kind, name
    if kind == "file":
        file_name = _python_file_and_callable(source)[0]
        if not Path(file_name).is_file():
            raise ModelSourceError(f"no such Python file: {file_name}")
        return "file", source
    if kind in ("onnx", "exported"):
        if not Path(source).is_file():
            what = "ONNX file" if kind == "onnx" else "torch.export file"
            raise ModelSourceError(f"no such {what}: {source}")
        return kind, source
    if kind == "transformers":  # a bare config.json / model directory
        if not Path(source).exists():
            raise ModelSourceError(f"no such config file: {source}")
        return check_source(f"transformers:{source}")
    raise ModelSourceError(
        f"unknown model source {source!r}; expected torchvision:NAME, timm:NAME, "
        f"transformers:CONFIGCLASS (or a config.json / model directory), FILE.py:CALLABLE, MODEL.onnx "
        f"or MODEL.pt2 (torch.export.save)"
    )


def _exported_file(source: str, overrides: dict[str, Any], meta: bool = False) -> LoadedModel:
    """A ``torch.export.save``d program: its unflattened module tree, its example inputs
    (refused when one is not a tensor: --input gives tensors only)."""
    from .exported import call_form, load, unflattened

    if overrides:
        raise ModelSourceError("--set changes how a model is built; a torch.export file is already built")
    if meta:  # loaded under the meta device, torch fails on the file's weights (P11-A1)
        raise ModelSourceError(
            "--meta builds a model on the meta device; a torch.export file is already built, with its "
            "weights read from the file: drop --meta"
        )
    try:
        program = load(source)
    except Exception as error:  # noqa: BLE001 - any failure to read the file is the same user error
        hint = ""
        if "pytree" in str(error) and "not registered" in str(error):
            hint = "; its inputs or outputs are classes of a module not imported: import it and profile the program in Python"
        raise ModelSourceError(
            f"{source} is not a file torch.export.load can read ({type(error).__name__}: "
            f"{_first_line(str(error), 200)}){hint}"
        ) from error
    module, classes = unflattened(program)
    args, kwargs = program.example_inputs or ((), {})
    try:
        specs = [*map(_example_spec, args), *(_example_spec(value, key) for key, value in kwargs.items())]
    except _NotAnInput as error:  # P11-A8: not "give one with --input", which cannot give it
        value = repr(error.args[0])
        raise ModelSourceError(
            f"{source} was exported with an input that is not a tensor ({type(error.args[0]).__name__} "
            f"{value if len(value) <= 40 else value[:37] + '...'}), which --input cannot give: profile it in "
            f"Python, flopmeter.profile(torch.export.load({source!r})) runs it on its example inputs"
        ) from None
    except ValueError:
        specs = []
    return LoadedModel(
        module,
        classes.get("", "ExportedProgram"),
        specs,
        exported_classes=classes,
        exported_call=call_form(program),
    )


def _python_file_and_callable(source: str) -> tuple[str, str]:
    """FILE.py:CALLABLE as (FILE.py, CALLABLE); a bare FILE.py as (FILE.py, "")."""
    if source.endswith(".py"):
        return source, ""
    file_name, _, attribute = source.rpartition(":")
    return file_name, attribute


def source_files(source: str) -> list[Path]:
    """The files on disk a model source is read from: FILE.py, MODEL.onnx, a config.json
    (or a model directory's); none for a library's model name."""
    name = source.removeprefix("transformers:")
    if ".py:" in name or name.endswith(".py"):
        name = _python_file_and_callable(name)[0]
    return [path for path in (Path(name), Path(name) / "config.json") if path.is_file()]


def _require(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ModelSourceError(f"{module} is not installed: pip install 'flopmeter[{extra}]'") from error


def _unknown(what: str, name: str, known: list[str]) -> ModelSourceError:
    return ModelSourceError(f"unknown {what} {name!r}{_hint(name, known)}")


def _hint(name: str, known: list[str]) -> str:
    """ "; did you mean a, b?" from case-insensitive close matches, else how many exist."""
    lower = {k.lower(): k for k in known}
    close = [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=3)]
    return (
        f"; did you mean {', '.join(close)}?"
        if close
        else f" (none of the {len(known)} known names is close)"
    )


def _check_known(kind: str, name: str, known: list[str]) -> None:
    if name not in known:
        raise _unknown(f"{kind} model", name, known)


@contextmanager
def _building(
    source: str, overrides: dict[str, Any], *, built_from: dict[str, Any] | None = None, hint: str = ""
) -> Iterator[None]:
    """Turn a library builder's exception into ModelSourceError (when the user's
    ``--set`` values are the likely cause) or ModelBuildError. ``overrides``: the ``--set``
    values this builder took as arguments ("rejected --set ..."); ``built_from``: those a
    config took, from which this builds the model ("building ... from --set ..."): a preset
    builds without them, so either is a usage error (exit 2) naming the keys, ``hint`` after;
    except an ImportError (a package the model needs is missing: the preset fails too)."""
    try:
        yield
    except (ModelSourceError, ModelBuildError):
        raise
    except Exception as error:
        text = f"{type(error).__name__}: {error}"
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(error))
        if unexpected:
            raise ModelSourceError(
                f"{source} has no setting {unexpected.group(1)!r} ({_first_line(str(error))}); "
                f"check the --set keys"
            ) from error
        if overrides:
            raise ModelSourceError(
                f"{source} rejected --set {_settings(overrides)}: {_first_line(text)}"
            ) from error
        if built_from and not isinstance(error, ImportError):  # a missing package is no value's fault
            raise ModelSourceError(
                f"building {source} from --set {_settings(built_from)} raised {_first_line(text)}; the config took "
                f"{'this value' if len(built_from) == 1 else 'these values'} but its model does not build "
                f"from {'it' if len(built_from) == 1 else 'them'}{hint}"
            ) from error
        raise ModelBuildError(f"building {source} raised {_first_line(text)}") from error


def _settings(values: dict[str, Any]) -> str:
    """``--set`` values as the user may type them back: ``key=value, ...``."""
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def _refuse_downloads(source: str, asked: dict[str, Any]) -> None:
    """No weights are downloaded (README), not even when ``--set`` asks for them: the
    counts do not depend on them."""
    wanted = {key: value for key, value in asked.items() if value not in (None, False)}
    if wanted:
        raise ModelSourceError(
            f"{source}: --set {_settings(wanted)} would download weights, and flopmeter never does (the counts do "
            "not depend on them); to count a model with its weights, load it in Python and call "
            "flopmeter.profile"
        )


def _first_line(text: str, limit: int = 300) -> str:
    """An exception message on one line, at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# torchvision ------------------------------------------------------------------


def _torchvision(name: str, overrides: dict[str, Any]) -> LoadedModel:
    models = _require("torchvision.models", "vision")
    builder = models.get_model_builder(name)
    no_weights = {p: None for p in inspect.signature(builder).parameters if "weights" in p}
    _refuse_downloads(f"torchvision:{name}", {k: v for k, v in overrides.items() if "weights" in k})
    with _building(f"torchvision:{name}", overrides):
        model = builder(**{**no_weights, **overrides})
    family = builder.__module__.split(".")[2] if builder.__module__.count(".") > 2 else "classification"
    specs, kind = _torchvision_inputs(models, name, family, model)
    return LoadedModel(model.eval(), f"torchvision:{name}", specs, kind)


def _torchvision_inputs(models: Any, name: str, family: str, model: Any) -> tuple[list[InputSpec], str]:
    """The input each torchvision family is built for, from the model and its weights'
    metadata (read without downloading)."""
    weights = _default_weights(models, name)
    meta = weights.meta if weights is not None else {}
    transforms = weights.transforms() if weights is not None else None
    crop = list(getattr(transforms, "crop_size", None) or [224])
    if family == "detection":  # a list of images at the size its transform resizes to
        size = int(model.transform.min_size[0]) if hasattr(model, "transform") else 800
        return [InputSpec((3, size, size))], "image_list"
    if family == "optical_flow":  # two frames; RAFT needs sides divisible by 8
        return [InputSpec((1, 3, 224, 224)), InputSpec((1, 3, 224, 224))], "tensors"
    if family == "video":  # (N, C, T, H, W)
        frames = max(16, int(meta.get("min_temporal_size", 16)))
        height, width = (crop * 2)[:2]
        return [InputSpec((1, 3, frames, int(height), int(width)))], "tensors"
    if family == "segmentation":
        size = int((getattr(transforms, "resize_size", None) or [520])[0])
        return [InputSpec((1, 3, size, size))], "tensors"
    # classification: a model that fixes its size says so (ViT's image_size: vit_h_14 built
    # without weights takes 224, its SWAG weights 518); else the default weights' crop
    size = int(getattr(model, "image_size", 0) or crop[0])
    return [InputSpec((1, 3, size, size))], "tensors"


def _default_weights(models: Any, name: str) -> Any:
    try:
        return models.get_model_weights(name).DEFAULT
    except Exception:  # models without published weights
        return None


# timm -------------------------------------------------------------------------


def _timm(name: str, overrides: dict[str, Any]) -> LoadedModel:
    timm = _require("timm", "vision")
    _refuse_downloads(f"timm:{name}", {k: v for k, v in overrides.items() if k == "pretrained"})
    overrides = {k: v for k, v in overrides.items() if k != "pretrained"}  # pretrained=false: as built
    with _building(f"timm:{name}", overrides):
        model = timm.create_model(name, pretrained=False, **overrides)
    size = tuple(getattr(model, "pretrained_cfg", {}).get("input_size", (3, 224, 224)))
    return LoadedModel(model.eval(), f"timm:{name}", [InputSpec((1, *size))])


# transformers -----------------------------------------------------------------


def _transformers_config_class(name: str) -> Any:
    """The config class a ``transformers:`` name means (a class name or a config file)."""
    transformers = _require("transformers", "transformers")
    path = Path(name)
    if path.exists():
        data = _read_config_file(path)
        mapping = transformers.CONFIG_MAPPING
        model_type = data["model_type"]
        if model_type not in mapping:
            raise ModelSourceError(
                f"{path}: unknown model_type {model_type!r}{_hint(model_type, list(mapping.keys()))}"
            )
        return mapping[model_type]
    config_class = getattr(transformers, name, None) if name.isidentifier() else None
    if isinstance(config_class, type) and issubclass(config_class, transformers.PretrainedConfig):
        return config_class
    raise ModelSourceError(_unknown_config_message(transformers, name))


def _unknown_config_message(transformers: Any, name: str) -> str:
    """Suggest the config class for a model type (``llama``) or a model class (``LlamaModel``)."""
    mapping = transformers.CONFIG_MAPPING
    if name.lower() in mapping:
        suggestion = mapping[name.lower()].__name__
        return f"{name!r} is a model type, not a config class; did you mean transformers:{suggestion}?"
    try:
        config_class = getattr(getattr(transformers, name, None), "config_class", None)
    except Exception:  # a lazily imported class whose module fails to import
        config_class = None
    if isinstance(config_class, type):
        return (
            f"{name!r} is a model class; flopmeter builds from a config: "
            f"transformers:{config_class.__name__} (or a config.json)"
        )
    known = [n for n in dir(transformers) if n.endswith("Config") and n != "PretrainedConfig"]
    return f"unknown transformers config class {name!r}{_hint(name, known)}"


def _read_config_file(path: Path) -> dict[str, Any]:
    config_file = path / "config.json" if path.is_dir() else path
    try:
        data = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelSourceError(f"cannot read a transformers config from {config_file}: {error}") from error
    if not isinstance(data, dict):
        raise ModelSourceError(
            f"{config_file} holds a JSON {type(data).__name__}; a transformers config.json is an object "
            f'{{"model_type": ..., ...}}'
        )
    if not data.get("model_type"):
        raise ModelSourceError(f"{config_file} has no 'model_type'; is it a transformers config.json?")
    return data


def _transformers(name: str, overrides: dict[str, Any], meta: bool) -> LoadedModel:
    transformers = _require("transformers", "transformers")
    config_class = _transformers_config_class(name)
    path = Path(name)
    data = dict(_read_config_file(path)) if path.exists() else {}
    data.pop("model_type", None)
    _check_config_keys(config_class, overrides)
    data.update(overrides)
    with _building(f"transformers:{name}", overrides):
        config = config_class(**data)
    notes: list[str] = []
    with _building(f"transformers:{name}", {}, built_from=overrides, hint=_token_id_hint(config, overrides)):
        if meta:
            model = transformers.AutoModel.from_config(config)
        else:
            model, note = _build_within_memory(transformers, config)
            notes += [note] if note else []
    return LoadedModel(model.eval(), f"transformers:{name}", _transformers_inputs(config), notes=notes)


def _token_id_hint(config: Any, overrides: dict[str, Any]) -> str:
    """The likely cause when a ``--set vocab_size`` left the preset's padding token outside
    the vocabulary (Phi3Config's pad_token_id 32,000 with ``vocab_size=100``: the
    embedding's ``padding_idx`` fails), and the ``--set`` that fixes it."""
    vocab, pad = getattr(config, "vocab_size", None), getattr(config, "pad_token_id", None)
    if "vocab_size" not in overrides or "pad_token_id" in overrides:
        return ""
    if not isinstance(vocab, int) or not isinstance(pad, int) or 0 <= pad < vocab:
        return ""
    return f" (its pad_token_id {pad} is outside vocab_size {vocab}: add --set pad_token_id=null, or an id below {vocab})"


def _check_config_keys(config_class: Any, overrides: dict[str, Any]) -> None:
    """Refuse ``--set`` keys the config class does not know (a misspelled
    ``num_hiden_layers`` would otherwise be stored and ignored)."""
    if not overrides:
        return
    try:
        default = config_class()
    except Exception:  # a config without defaults: its own validation decides
        return
    known = set(dir(default)) | set(getattr(default, "attribute_map", {}))
    known |= set(inspect.signature(config_class.__init__).parameters) - {"self", "kwargs"}
    for key, value in overrides.items():
        if (
            key not in known
            and not _consumed(config_class, key, value)
            and not _read_by_model(config_class, key)
        ):
            fields = sorted(k for k in vars(default) if not k.startswith("_"))
            raise ModelSourceError(f"{config_class.__name__} has no setting {key!r}{_hint(key, fields)}")
        try:
            was: Any = getattr(default, key, None)
        except RuntimeError:  # a per-layer attribute of a heterogeneous config (Gemma 4's head_dim)
            was = default._getattr_without_heterogeneous_validation(key, None)
        ints = type(was) is int and type(value) is int  # not bools
        if ints and was > 0 and value < 0 and not key.endswith(("_id", "_ids")):
            # transformers accepts num_hidden_layers=-1 and builds a model with no layers
            raise ModelSourceError(
                f"{config_class.__name__} {key}={value}: a count or size, {was} by default, cannot be negative"
            )


def _consumed(config_class: Any, key: str, value: Any) -> bool:
    """Whether ``config_class`` takes ``key`` as an argument that it turns into other settings
    (Gemma 4's ``global_head_dim`` into its full-attention layers' head_dim): built with it,
    the config does not keep it. An unknown key is kept as an attribute, and ignored."""
    try:
        built = config_class(**{key: value})
    except Exception:  # its own validation decides later, with all the overrides
        return False
    return key not in vars(built)


def _read_by_model(config_class: Any, key: str) -> bool:
    """Whether the config's modeling code reads ``key`` as an optional setting the config class
    does not declare, ``getattr(config, "key", default)`` (Falcon-H1's ``head_dim``: its
    attention takes it when given, hidden / heads otherwise)."""
    module = getattr(config_class, "__module__", "")
    if ".configuration_" not in module:
        return False
    try:
        spec = importlib.util.find_spec(module.replace(".configuration_", ".modeling_"))
        source = Path(spec.origin).read_text() if spec and spec.origin else ""
    except (ImportError, OSError, ValueError):
        return False
    return re.search(rf"getattr\(\s*(?:self\.)?config\s*,\s*[\"']{re.escape(key)}[\"']", source) is not None


def available_memory() -> int:
    """Bytes of memory this machine can still give (Linux MemAvailable, else free pages)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: assume it fits


MEMORY_SHARE = 0.5  # build for real only when the weights take at most this share of free memory


def _build_within_memory(transformers: Any, config: Any) -> tuple[torch.nn.Module, str | None]:
    """Build on meta first (free); keep that model when its weights would take more
    than ``MEMORY_SHARE`` of the memory available, else build it for real."""
    with torch.device("meta"):
        shell = transformers.AutoModel.from_config(config)
    needed = sum(t.numel() * t.element_size() for t in [*shell.parameters(), *shell.buffers()])
    free = available_memory()
    if needed > free * MEMORY_SHARE:
        from .render.units import nbytes

        return shell, (
            f"built on the meta device (as with --meta): its weights need {nbytes(needed)}, "
            f"more than half of the {nbytes(free)} of memory available"
        )
    del shell
    return transformers.AutoModel.from_config(config), None


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


# FILE.py ------------------------------------------------------------------------


def _python_file(source: str, overrides: dict[str, Any], example_inputs: bool = True) -> LoadedModel:
    file_name, attribute = _python_file_and_callable(source)
    path = Path(file_name).resolve()
    if not attribute:
        raise ModelSourceError(f"{source!r}: name the class or function to call, as FILE.py:CALLABLE")
    with _user_module(path, file_name) as module:
        factory: Callable[..., Any] | None = getattr(module, attribute, None)
        if factory is None:
            names = [n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n))]
            raise _unknown(f"callable in {file_name}", attribute, names)
        if not callable(factory):
            raise ModelSourceError(
                f"{attribute!r} in {file_name} is not a class or function (it is {factory!r}, "
                f"of type {type(factory).__name__})"
            )
        if isinstance(factory, torch.nn.Module):  # a model built at import: taken as it is
            if overrides:
                raise ModelSourceError(
                    f"{attribute!r} in {file_name} is a model already built, so --set has nothing "
                    "to pass: name a class or function to call with the --set values"
                )
            model = factory
        else:
            _check_factory_arguments(factory, attribute, overrides)
            with _user_code(path, f"{attribute}() in {file_name}"):
                model = factory(**overrides)
        if not isinstance(model, torch.nn.Module):
            raise ModelSourceError(f"{source!r} returned {type(model).__name__}, expected a torch.nn.Module")
        examples = example_specs(module, file_name) if example_inputs else []
    return LoadedModel(set_mode(model, False), source, examples)


EXAMPLE_INPUTS_EXPECTED = (
    "a spec string like '1x3x224x224' or 'input_ids:1x128:int64', a shape tuple like (1, 3, 224, 224), "
    "a tensor (its shape and dtype), a list of these (one per argument), or a dict "
    "{argument name: one of these}"
)


def example_specs(module: Any, file_name: str) -> list[InputSpec]:
    """The inputs a model file's ``EXAMPLE_INPUTS`` documents (none when it has none).
    Anything but ``EXAMPLE_INPUTS_EXPECTED`` is a ModelSourceError naming it."""
    if not hasattr(module, "EXAMPLE_INPUTS"):
        return []
    value = module.EXAMPLE_INPUTS
    where = f"EXAMPLE_INPUTS in {file_name}"
    try:
        if isinstance(value, dict):
            return [_example_spec(item, name) for name, item in value.items()]
        if isinstance(value, (list, tuple)) and not _is_shape(value):
            return [_example_spec(item) for item in value]
        return [_example_spec(value)]
    except ValueError as error:  # a bad spec string or shape: its message says what was expected
        raise ModelSourceError(f"{where}: {error} (or give --input)") from None
    except _NotAnInput as error:
        item = error.args[0]
        entry = (
            ""
            if item is value
            else f"; its entry {_first_line(repr(item), 60)} ({type(item).__name__}) is none of these"
        )
        raise ModelSourceError(
            f"{where} is {_first_line(repr(value), 80)} ({type(value).__name__}); "
            f"expected {EXAMPLE_INPUTS_EXPECTED}{entry} (or give --input)"
        ) from None


class _NotAnInput(TypeError):
    """An EXAMPLE_INPUTS entry of no kind flopmeter reads (``args[0]``: the entry)."""


def _is_shape(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(s, int) and not isinstance(s, bool) for s in value)
    )


def _example_spec(item: Any, name: str | None = None) -> InputSpec:
    """One entry of EXAMPLE_INPUTS (``name``: its key in a dict) as an InputSpec."""
    if isinstance(item, torch.Tensor):
        if item.dtype not in _DTYPE_NAMES:
            raise ValueError(f"a tensor of dtype {item.dtype} is not an input flopmeter can build")
        spec = InputSpec(tuple(item.shape), _DTYPE_NAMES[item.dtype])
    elif isinstance(item, (InputSpec, str)) or _is_shape(item):
        spec = as_spec(item, what="the shape")
    else:
        raise _NotAnInput(item)
    if name is None:
        return spec
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"the key {name!r} is not an argument name")
    if spec.name not in (None, name):
        raise ValueError(f"the entry {name!r} names another argument, {spec.name!r}")
    return InputSpec(spec.shape, spec.dtype, name)


_DTYPE_NAMES = {dtype: name for name, dtype in reversed(DTYPES.items())}  # the first name of each


@contextmanager
def _user_module(path: Path, file_name: str) -> Iterator[Any]:
    """Import the file as a module registered in ``sys.modules`` (dataclasses with
    ``from __future__ import annotations`` look their module up there) with its
    directory on ``sys.path`` (a factory may import a sibling lazily). Afterwards
    ``sys.path`` is as it was and the modules imported from that directory are removed."""
    name = f"flopmeter_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelSourceError(f"cannot import {file_name}")
    module = importlib.util.module_from_spec(spec)
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        with _user_code(path, f"importing {file_name}"):
            spec.loader.exec_module(module)
        yield module
    finally:
        sys.path[:] = saved_path
        for added in set(sys.modules) - saved_modules:
            origin = getattr(sys.modules[added], "__file__", None)
            if added == name or (origin and Path(origin).resolve().is_relative_to(path.parent)):
                del sys.modules[added]


@contextmanager
def _user_code(path: Path, what: str) -> Iterator[None]:
    """The user's code raised (or called sys.exit): a short ModelBuildError naming the
    line of their file."""
    try:
        yield
    except SyntaxError as error:
        raise ModelBuildError(f"{what}: SyntaxError at line {error.lineno}: {error.msg}") from error
    except SystemExit as error:
        raise ModelBuildError(f"{what} called sys.exit({error.code!r})") from None
    except Exception as error:
        frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).resolve() == path]
        where = f" (line {frames[-1].lineno})" if frames else ""
        raise ModelBuildError(
            f"{what} raised {type(error).__name__}{where}: {_first_line(str(error))}"
        ) from error


def _check_factory_arguments(factory: Callable[..., Any], name: str, overrides: dict[str, Any]) -> None:
    """The factory must accept the ``--set`` values and need nothing else."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins and extension types: just call it
        return
    try:
        signature.bind(**overrides)
    except TypeError as error:
        needed = [
            p.name
            for p in signature.parameters.values()
            if p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name not in overrides
        ]
        if needed:
            raise ModelSourceError(
                f"{name}{signature} needs {', '.join(needed)}: give "
                + " ".join(f"--set {n}=VALUE" for n in needed)
            ) from error
        raise ModelSourceError(f"{name}{signature} does not take the --set values given: {error}") from error


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
