"""Load params.yaml and validate it against the one schema, before any job runs."""

import copy
import json
import math
import re
from importlib.resources import files
from pathlib import Path

import jsonschema
import yaml

from lenet_mnist.errors import LenetError
from lenet_mnist.sizes import MNIST_TRAIN_IMAGES, run_size, subset_size

SCHEMA = yaml.safe_load(files("lenet_mnist").joinpath("params.schema.yaml").read_text())


MIN_SUBSET = 100  # images: with stratified subsets, every class in it
MAX_DEPTH = 16  # levels of nesting: params.yaml has 5
MAX_VALUES = 100_000  # after YAML aliases are expanded: a default study has a few hundred


class ParamsError(LenetError):
    """params.yaml is missing, unreadable or breaks the schema."""


def _strict(validator_class):
    """A validator that also writes each missing property's schema default into the instance, takes
    an integer to be an int (JSON Schema also takes 2.0, which torch and argparse do not) and
    matches a pattern against the whole string (re.search lets "name\\n" pass '^...$')."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, props, instance, schema)

    def pattern(validator, regex, instance, schema):
        if isinstance(instance, str) and not re.fullmatch(regex, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {regex!r}")

    types = validator_class.TYPE_CHECKER.redefine(
        "integer", lambda checker, instance: isinstance(instance, int) and not isinstance(instance, bool)
    )
    return jsonschema.validators.extend(
        validator_class, {"properties": properties, "pattern": pattern}, type_checker=types
    )


Validator = _strict(jsonschema.Draft202012Validator)


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
        name = error.instance if error.instance.isprintable() else repr(error.instance)
        return (
            f"{key}.{name}: a name may hold only letters, digits and '_', and must start with a "
            "letter or digit (it becomes a file name, a stage name and a DVC params key)"
        )
    if error.validator == "type" and isinstance(error.instance, float) and error.instance.is_integer():
        return f"{key}: {error.instance} is not an integer (write {int(error.instance)})"
    if error.validator == "type" and isinstance(error.instance, str) and _reads_as_number(error.instance):
        return (
            f"{key}: {error.instance!r} is a string to YAML, not a number (write a decimal point and a "
            f"signed exponent, as in 1.0e-3)"
        )
    return f"{key or 'top level'}: {error.message}"


def _reads_as_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _non_finite(value, key=""):
    """The first NaN or infinity in value, as (key, YAML spelling); JSON Schema's bounds are false
    for NaN, so .nan would pass every minimum and maximum."""
    if isinstance(value, float) and not math.isfinite(value):
        return key, ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for name, child in children:
        if found := _non_finite(child, f"{key}.{name}" if key else str(name)):
            return found
    return None


def _non_string_key(value, key=()):
    """The path to the first mapping key that YAML read as other than a string (`1:`, `true:`,
    `null:`), which the schema's name patterns never see; None if there is none."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for name, child in children:
        if isinstance(value, dict) and not isinstance(name, str):
            return (*key, name)
        if found := _non_string_key(child, (*key, name)):
            return found
    return None


def _check_shape(node):
    """Refuse, before anything is built from it, a document nested too deeply or whose aliases
    expand it beyond any study (a "billion laughs" bomb builds nothing, but validating it would
    walk every expanded value)."""
    sizes = {}

    def size(node, depth):
        if depth > MAX_DEPTH:
            raise ParamsError(f"nested deeper than {MAX_DEPTH} levels")
        if id(node) not in sizes:
            children = (
                [child for pair in node.value for child in pair]
                if isinstance(node, yaml.MappingNode)
                else node.value
                if isinstance(node, yaml.SequenceNode)
                else []
            )
            sizes[id(node)] = 1 + sum(size(child, depth + 1) for child in children)
            if sizes[id(node)] > MAX_VALUES:
                raise ParamsError(f"more than {MAX_VALUES:,} values once its aliases are expanded")
        return sizes[id(node)]

    size(node, 0)


def _check_references(params):
    """What the schema cannot say: names refer to entries that exist, and no run is defined twice."""
    spelled = {str(f) for f in params["subsample"]["fractions"]}
    train_images = MNIST_TRAIN_IMAGES - params["split"]["val_size"]
    for i, fraction in enumerate(params["subsample"]["fractions"]):
        if subset_size(fraction, train_images) < MIN_SUBSET:
            raise ValueError(
                f"subsample.fractions.{i}: {fraction} of the {train_images:,} training images is "
                f"{subset_size(fraction, train_images)}, fewer than {MIN_SUBSET} (so that every class "
                f"is in it)"
            )
    seen = {}
    for name, run in params["runs"].items():
        for kind, table in (("model", "models"), ("optimizer", "optimizers"), ("policy", "policies")):
            if run[kind] not in params[table]:
                raise ValueError(
                    f"runs.{name}.{kind}: {run[kind]!r} is not one of {table} (allowed: {', '.join(params[table])})"
                )
        if str(run["fraction"]) not in spelled:
            raise ValueError(
                f"runs.{name}.fraction: {run['fraction']} is not one of subsample.fractions "
                f"(allowed, spelled as listed: {', '.join(sorted(spelled))})"
            )
        if run_size(params, name) < run["batch_size"]:
            raise ValueError(
                f"runs.{name}.batch_size: {run['batch_size']} is more than the run's "
                f"{run_size(params, name)} training images"
            )
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
                raise ValueError(
                    f"studies.{study}.runs.{i}: {run!r} is not one of runs (allowed: {', '.join(params['runs'])})"
                )
        allowed = f"(allowed: {', '.join(spec['runs'])})"
        # Claims and curves name runs of their study: [(key, runs it lists)].
        listed = [(f"claims.{i}", [c["run"], c["reference"]]) for i, c in enumerate(spec.get("claims", []))]
        listed += [(f"curves.{curve}", runs) for curve, runs in spec.get("curves", {}).items()]
        for key, runs in listed:
            for i, run in enumerate(runs):
                if run not in spec["runs"]:
                    raise ValueError(f"studies.{study}.{key}: {run!r} is not one of the study's runs {allowed}")
        for i, claim in enumerate(spec.get("claims", [])):
            _check_claim(params, f"studies.{study}.claims.{i}", claim)
        stated = [(c["run"], c["reference"], c["metric"], c.get("at")) for c in spec.get("claims", [])]
        if len(set(stated)) < len(stated):
            raise ValueError(f"studies.{study}.claims: a run, reference and metric stated twice")
        if "curves" in spec and spec["figure"] != "data_size":
            raise ValueError(f"studies.{study}.curves: only a data_size figure draws curves")
        for run in spec.get("notebook_reported", {}):
            if run not in spec["runs"]:
                raise ValueError(f"studies.{study}.notebook_reported.{run}: not one of the study's runs {allowed}")


def _check_claim(params, key, claim):
    """A claim the design and summarize stages can compute: two runs, an `at` where its metric
    needs one (an epoch the runs have), a margin exactly for equivalence, and enough seeds."""
    run, reference = claim["run"], claim["reference"]
    if run == reference:
        raise ValueError(f"{key}: {run!r} compared with itself")
    if claim["metric"] == "test_accuracy":
        if "at" in claim:
            raise ValueError(f"{key}.at: test_accuracy takes no `at` (train_loss and epochs_to_train_loss do)")
    elif "at" not in claim:
        raise ValueError(
            f"{key}: {claim['metric']} needs `at` (an epoch for train_loss, a loss for epochs_to_train_loss)"
        )
    elif claim["metric"] == "train_loss":
        epochs = min(params["runs"][run]["epochs"], params["runs"][reference]["epochs"])
        if claim["at"] != int(claim["at"]) or not 1 <= claim["at"] <= epochs:
            raise ValueError(f"{key}.at: {claim['at']} is not an epoch both runs train (allowed: 1 to {epochs})")
        claim["at"] = int(claim["at"])
    if (claim["expect"] == "equivalent") != ("margin" in claim):
        raise ValueError(f"{key}: a margin goes with expect: equivalent, and only with it")
    if params["design"]["pilot_seeds"] > params["seeds"]:
        raise ValueError(
            f"design.pilot_seeds: {params['design']['pilot_seeds']} is more than the {params['seeds']} seeds "
            "every run trains with (seeds)"
        )


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key, mark):
        super().__init__(f"{key!r} is given twice in one mapping at line {mark.line + 1}")


class UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping: PyYAML would keep the last one
    silently, so two runs with the same name would become one."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # <<: *anchor, whose keys this mapping may override
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(key, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_params(path="params.yaml"):
    """Return the validated params, schema defaults filled in; raise ParamsError with one line."""
    return validate_params(read_params(path), path)


def validate_params(params, path):
    """`params` as read from `path`, validated and with the schema's defaults filled in (in place)."""
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of sections ({', '.join(SCHEMA['required'])})")
    if found := _non_string_key(params):
        raise ParamsError(
            f"{path}: {'.'.join(map(str, found))}: YAML reads this key as {type(found[-1]).__name__}, not "
            f'as a name (a key must be a string: quote it, as in "{found[-1]}":)'
        )
    if found := _non_finite(params):
        raise ParamsError(
            f"{path}: {found[0]}: {found[1]} is not a finite number (every number in params.yaml must be finite)"
        )
    error = jsonschema.exceptions.best_match(Validator(SCHEMA).iter_errors(params))
    if error is not None:
        raise ParamsError(f"{path}: {_describe(error)}")
    try:
        _check_references(params)
    except ValueError as e:
        raise ParamsError(f"{path}: {e}") from None
    return params


def read_params(path):
    """params.yaml as written (no defaults), read with the same checks of the file itself."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():  # a FIFO would block the read
            raise ParamsError(f"{path}: not a regular file")
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise ParamsError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ParamsError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})") from None
    loader = UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_shape(node)
        params = loader.construct_document(node) if node is not None else None
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from None
    except RecursionError:
        raise ParamsError(f"{path}: nested deeper than {MAX_DEPTH} levels") from None
    except DuplicateKeyError as e:
        raise ParamsError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}: not valid YAML{where}") from None
    finally:
        loader.dispose()
    return params


def check_unchanged(path, written, what, then):
    """params.yaml must still be what `what` read at its start: both tools record the params.yaml
    they find once it ends, and its outputs are of the values it read. `then`: what to do."""
    if read_params(path) != written:
        raise ParamsError(
            f"{path}: edited while {what} ran, whose outputs are of the values it read at its start; {then}"
        )
