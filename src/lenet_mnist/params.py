"""Load params.yaml and validate it against the one schema, before any job runs."""

import copy
import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import yaml

from lenet_mnist.errors import LenetError

SCHEMA = yaml.safe_load(files("lenet_mnist").joinpath("params.schema.yaml").read_text())


class ParamsError(LenetError):
    """params.yaml is missing, unreadable or breaks the schema."""


def _fill_defaults(validator_class):
    """A validator that also writes each missing property's schema default into the instance."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": properties})


Validator = _fill_defaults(jsonschema.Draft202012Validator)


def _describe(error):
    """One line that names the key and what is allowed."""
    key = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        prefix = f"{key}." if key else ""
        return f"{prefix}{unknown[0]}: unknown key (allowed: {', '.join(allowed) or 'none'})"
    if error.validator == "enum":
        return f"{key}: {error.instance!r} is not allowed (allowed: {', '.join(map(str, error.validator_value))})"
    if error.validator == "pattern" and "propertyNames" in error.schema_path:
        return (f"{key}.{error.instance}: a name may hold only letters, digits and '_', and must start with a "
                "letter or digit (it becomes a file name, a stage name and a DVC params key)")
    return f"{key or 'top level'}: {error.message}"


def _check_references(params):
    """What the schema cannot say: names refer to entries that exist, and no run is defined twice."""
    spelled = {str(f) for f in params["subsample"]["fractions"]}
    seen = {}
    for name, run in params["runs"].items():
        for kind, table in (("model", "models"), ("optimizer", "optimizers"), ("policy", "policies")):
            if run[kind] not in params[table]:
                raise ValueError(f"runs.{name}.{kind}: {run[kind]!r} is not one of {table} "
                                 f"(allowed: {', '.join(params[table])})")
        if str(run["fraction"]) not in spelled:
            raise ValueError(f"runs.{name}.fraction: {run['fraction']} is not one of subsample.fractions "
                             f"(allowed, spelled as listed: {', '.join(sorted(spelled))})")
        # Identical runs would train the same thing twice: a study should name the one run.
        config = json.dumps(run, sort_keys=True)
        if config in seen:
            raise ValueError(f"runs.{name}: the same configuration as runs.{seen[config]} (list that run instead)")
        seen[config] = name
    for name, policy in params["policies"].items():
        if policy["scale"][0] > policy["scale"][1]:
            raise ValueError(f"policies.{name}.scale: {policy['scale']} must be [low, high] with low <= high")
    for name, optimizer in params["optimizers"].items():
        if optimizer["name"] != "sgd" and optimizer["momentum"]:
            raise ValueError(f"optimizers.{name}.momentum: only sgd takes momentum")
    for study, spec in params["studies"].items():
        for i, run in enumerate(spec["runs"]):
            if run not in params["runs"]:
                raise ValueError(f"studies.{study}.runs.{i}: {run!r} is not one of runs "
                                 f"(allowed: {', '.join(params['runs'])})")
        allowed = f"(allowed: {', '.join(spec['runs'])})"
        # Pairs and curves name runs of their study: [(key, runs it lists)].
        listed = [(f"pairs.{i}", pair) for i, pair in enumerate(spec.get("pairs", []))]
        listed += [(f"curves.{curve}", runs) for curve, runs in spec.get("curves", {}).items()]
        for key, runs in listed:
            for i, run in enumerate(runs):
                if run not in spec["runs"]:
                    raise ValueError(f"studies.{study}.{key}.{i}: {run!r} is not one of the study's runs {allowed}")
        for i, pair in enumerate(spec.get("pairs", [])):
            if pair[0] == pair[1]:
                raise ValueError(f"studies.{study}.pairs.{i}: {pair[0]!r} compared with itself")
        if "curves" in spec and spec["figure"] != "data_size":
            raise ValueError(f"studies.{study}.curves: only a data_size figure draws curves")
        for run in spec.get("notebook_reported", {}):
            if run not in spec["runs"]:
                raise ValueError(f"studies.{study}.notebook_reported.{run}: not one of the study's runs {allowed}")


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key, mark):
        super().__init__(f"{key!r} is given twice in one mapping at line {mark.line + 1}")


class UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping: PyYAML would keep the last one
    silently, so two runs with the same name would become one."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(key, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def trained_models(params):
    """Every model the study trains: each run once per seed, in params order."""
    return [(run, seed) for run in params["runs"] for seed in params["seeds"]]


def load_params(path="params.yaml"):
    """Return the validated params, schema defaults filled in; raise ParamsError with one line."""
    path = Path(path)
    try:
        params = yaml.load(path.read_text(), Loader=UniqueKeyLoader)
    except OSError as e:
        raise ParamsError(f"{path}: cannot read ({e.strerror})") from None
    except DuplicateKeyError as e:
        raise ParamsError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}: not valid YAML{where}") from None
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of sections ({', '.join(SCHEMA['required'])})")
    error = jsonschema.exceptions.best_match(Validator(SCHEMA).iter_errors(params))
    if error is not None:
        raise ParamsError(f"{path}: {_describe(error)}")
    try:
        _check_references(params)
    except ValueError as e:
        raise ParamsError(f"{path}: {e}") from None
    return params
