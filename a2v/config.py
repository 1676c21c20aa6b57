"""Configuration: YAML files merged in order, validated against the JSON Schema.

The schema is ``workflow/schemas/config.schema.yaml`` (the same file Snakemake's ``validate``
uses). Later files override earlier ones key by key (dicts merge recursively, lists and scalars
are replaced), as Snakemake does with several ``--configfile``. An experiment names a model, a
dataset and its phases; :func:`experiment` returns it with the defaults filled in.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from a2v.errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def deep_merge(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into a copy of ``base`` (dicts merge; anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_schema() -> dict:
    """The config JSON Schema.

    Raises:
        ConfigError: the schema file is missing (a2v used outside its repository).
    """
    if not SCHEMA_PATH.is_file():
        raise ConfigError(f"{SCHEMA_PATH}: config schema not found; run a2v from its repository checkout")
    return yaml.safe_load(SCHEMA_PATH.read_text())


def validate(config: dict, source: str = "config") -> dict:
    """Validate a merged config against the schema and fill the schema's defaults.

    Raises:
        ConfigError: naming the offending key path and the reason.
    """
    schema = load_schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        lines = [f"  {'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors[:10]]
        raise ConfigError(f"{source}: configuration fails its schema ({SCHEMA_PATH.name}):\n" + "\n".join(lines))
    return _fill_defaults(config, schema)


def _fill_defaults(node: Any, schema: dict) -> Any:
    if isinstance(node, dict) and schema.get("type") == "object":
        out = dict(node)
        for key, sub in schema.get("properties", {}).items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = _fill_defaults(out[key], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in out:
                if key not in schema.get("properties", {}):
                    out[key] = _fill_defaults(out[key], extra)
        return out
    if isinstance(node, list) and isinstance(schema.get("items"), dict):
        return [_fill_defaults(item, schema["items"]) for item in node]
    return node


def load_config(paths: list[str | Path]) -> dict:
    """Read, merge and validate config files.

    Raises:
        ConfigError: a file is missing, is not YAML, or the merged config fails the schema.
    """
    if not paths:
        raise ConfigError("no config file given")
    merged: dict = {}
    for path in paths:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        merged = deep_merge(merged, data)
    source = " + ".join(map(str, paths))
    config = validate(merged, source)
    for name in config["experiments"]:
        check_experiment(config, name, source)
    check_judges(config, source)
    return config


def check_judges(config: dict, source: str = "config") -> None:
    """Parse the ``lipreader`` and ``syncnet`` sections the way their training will.

    Raises:
        ConfigError: naming the offending key.
    """
    from a2v.training.lipreader import parse_lipreader_config
    from a2v.training.syncnet import parse_syncnet_config

    try:
        parse_lipreader_config(config.get("lipreader"))
        parse_syncnet_config(config.get("syncnet"))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def check_experiment(config: dict, name: str, source: str = "config") -> None:
    """Parse an experiment's model/training/phases by its recipe (:mod:`a2v.recipes`), as training
    will, before any job runs — the recipe's dataclasses check every key the schema leaves open.

    Raises:
        ConfigError: naming the experiment and the offending key.
    """
    from a2v.recipes import make_recipe

    exp = experiment(config, name)
    try:
        make_recipe(exp["model_type"], exp["model"], exp["training"], exp["phases"], exp["pretrained"])
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: experiment {name!r}: {exc}") from exc


def experiment(config: dict, name: str) -> dict:
    """One experiment with ``model_defaults[model]`` merged under its own ``model`` settings.

    Returns:
        dict with keys ``name``, ``model_type``, ``dataset``, ``model``, ``training``, ``phases``,
        ``pretrained`` (sections of the networks the recipe pretrains), ``select``, ``evaluate``.

    Raises:
        ConfigError: unknown experiment or dataset.
    """
    experiments = config.get("experiments", {})
    if name not in experiments:
        raise ConfigError(f"unknown experiment {name!r}; config has {sorted(experiments)}")
    exp = experiments[name]
    if exp["dataset"] not in config.get("datasets", {}):
        raise ConfigError(f"experiment {name!r} names unknown dataset {exp['dataset']!r}")
    defaults = config.get("model_defaults", {}).get(exp["model_type"], {})
    return {
        "name": name,
        "model_type": exp["model_type"],
        "dataset": exp["dataset"],
        "model": deep_merge(defaults.get("model", {}), exp.get("model", {})),
        "training": deep_merge(defaults.get("training", {}), exp.get("training", {})),
        "phases": exp.get("phases", defaults.get("phases", [])),
        "pretrained": deep_merge(defaults.get("pretrained", {}), exp.get("pretrained", {})),
        "select": deep_merge(config.get("select", {}), exp.get("select", {})),
        "evaluate": deep_merge(config.get("evaluate", {}), exp.get("evaluate", {})),
    }
