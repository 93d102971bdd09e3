"""`lenet-mnist <stage>`: one subcommand per pipeline stage, called alike by Snakemake and DVC, and
the tools (`lock`, `touch`, `push` and `pull`, which keep the two in agreement, the benchmarks and
`tables`), each built from its declaration in stages.py."""

import argparse
import copy
import importlib
import inspect
import logging
import sys
from pathlib import Path

from lenet_mnist.check import special_file
from lenet_mnist.errors import LenetError, os_error_line
from lenet_mnist.params import check_unchanged, read_params, validate_params
from lenet_mnist.stages import BY_NAME, COMMANDS

log = logging.getLogger("lenet_mnist")


def check_paths(args):
    """Refuse, before anything is read or written, inputs that are special files and outputs that
    would overwrite an input or write into one (--out at an input's directory, say)."""

    command = BY_NAME[args.stage]
    inputs = [("--params", args.params), *((a.flag, getattr(args, a.dest)) for a in command.inputs)]
    outputs = [(a.flag, getattr(args, a.dest)) for a in command.outputs]
    if args.log:
        outputs.append(("--log", args.log))
    for flag, path in inputs:
        if found := special_file(path):
            raise LenetError(f"{flag} {found}: not a regular file or directory (a FIFO or device is never read)")
    for out_flag, out in outputs:
        for in_flag, source in inputs:
            a, b = out.resolve(), source.resolve()
            if a == b or a in b.parents or b in a.parents:
                raise LenetError(
                    f"{out_flag} {out}: overlaps the input {in_flag} {source} (an output must be a path of its own)"
                )


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--params", type=Path, default=Path("params.yaml"), help="default: %(default)s")
    common.add_argument("--log", type=Path, help="also write the log to this file")
    parser = argparse.ArgumentParser(prog="lenet-mnist", description=__doc__)
    subparsers = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, parents=[common], help=command.help, description=command.help)
        for arg in command.args:
            arg.add_to(sub)
    return parser


def call(command, params, args):
    """command's function on the parsed arguments, and on params and its file where it takes them."""
    function = getattr(importlib.import_module(f"lenet_mnist.{command.module}"), command.function)
    given = {arg.dest: getattr(args, arg.dest) for arg in command.args}
    wanted = inspect.signature(function).parameters
    extra = {"params": params, "params_path": args.params}
    function(**given, **{name: extra[name] for name in extra if name in wanted})


def setup_logging(log_file):
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", handlers=handlers, force=True)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        check_paths(args)
        setup_logging(args.log)
    except LenetError as e:
        print(f"lenet-mnist {args.stage}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # --log names a directory, say
        print(f"lenet-mnist {args.stage}: error: --log {os_error_line(e)}", file=sys.stderr)
        return 1
    try:
        written = read_params(args.params)
        call(BY_NAME[args.stage], validate_params(copy.deepcopy(written), args.params), args)
        check_unchanged(args.params, written, args.stage, "run it again")
    except LenetError as e:
        log.error("%s: error: %s", args.stage, e)
        return 1
    except OSError as e:  # a missing, unreadable or misplaced file; a full disk
        log.error("%s: error: %s", args.stage, os_error_line(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
