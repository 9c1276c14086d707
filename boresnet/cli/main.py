"""Command-line interface: ``boresnet train | bo | evaluate | plot``.

Arguments are parsed by :mod:`jsonargparse` straight into the dataclasses of
:mod:`boresnet.config.schema`, so every config field is also a flag (``--trainer.devices 2``)
and a YAML file is ``--config FILE``. Unknown fields are found here, against the
dataclasses themselves, before jsonargparse parses; every user error is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from argparse import ArgumentError
from collections.abc import Sequence

import lightning.pytorch  # noqa: F401 - imported first: it sets its loggers to INFO
import yaml
from jsonargparse import ActionConfigFile, ArgumentParser

from boresnet.cli.commands import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandError,
    cmd_bo,
    cmd_evaluate,
    cmd_plot,
    cmd_train,
)
from boresnet.config.schema import Config, ConfigError, unknown_field
from boresnet.study.journal import JournalError
from boresnet.study.lock import RunFolderBusy
from boresnet.study.loop import StudyError
from boresnet.study.report import CheckpointError
from boresnet.study.resume import ResumeError
from boresnet.study.run_folder import RunFolderError
from boresnet.study.runners import EngineError
from boresnet.training.data import DatasetError
from boresnet.training.distributed import close_process_group
from boresnet.training.faults import MachineFault

# Errors that are the user's or the machine's, not bugs: one line, exit status 2.
USER_ERRORS = (
    ArgumentError,
    ConfigError,
    CommandError,
    DatasetError,
    EngineError,
    JournalError,
    RunFolderBusy,
    RunFolderError,
    ResumeError,
    StudyError,
    CheckpointError,
    MachineFault,
    OSError,
)
# Colour and cursor codes (Ray's messages carry them): never in an error line.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# An error line's length at most, "boresnet: error: " aside.
MAX_LINE = 280
# Flags a subcommand adds beside the config fields (and jsonargparse's own).
EXTRA_FLAGS = {
    "train": {"config", "data-dir", "lr", "help", "print_config"},
    "bo": {"config", "data-dir", "budget", "resume", "run-dir", "help", "print_config"},
}


def _config_parser(description: str) -> ArgumentParser:
    parser = ArgumentParser(description=description, exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file")
    parser.add_class_arguments(Config, None)
    parser.add_argument(
        "--data-dir",
        type=str | None,
        default=None,
        help="folder holding KMNIST/raw/ (shortcut for --data.data_dir)",
    )
    return parser


def build_parsers() -> tuple[ArgumentParser, dict[str, ArgumentParser]]:
    """Return the ``boresnet`` parser and its four subcommand parsers by name."""
    parser = ArgumentParser(
        prog="boresnet",
        exit_on_error=False,
        description="Bayesian optimisation of a ResNet-9's SGD learning rate on KMNIST.",
    )
    commands = parser.add_subcommands(dest="command")
    subs: dict[str, ArgumentParser] = {}

    subs["train"] = _config_parser("Train one trial and print its result as JSON.")
    subs["train"].add_argument("--lr", type=float | None, default=None, help="learning rate")

    subs["bo"] = bo = _config_parser("Run (or resume) a Bayesian optimisation study.")
    bo.add_argument(
        "--budget",
        type=int | None,
        default=None,
        help="evaluations in total (shortcut for --search.budget)",
    )
    bo.add_argument("--resume", type=str | None, default=None, help="run folder to resume")
    bo.add_argument(
        "--run-dir",
        type=str | None,
        default=None,
        help="exact run folder: new or empty (default: OUT/bo-TIMESTAMP)",
    )

    subs["evaluate"] = ArgumentParser(
        description="Evaluate a study's best.ckpt on a test split.", exit_on_error=False
    )
    subs["evaluate"].add_argument("run_dir", type=str)
    subs["evaluate"].add_argument("--data-dir", type=str | None, default=None)
    subs["evaluate"].add_argument("--accelerator", type=str, default="auto")

    subs["plot"] = ArgumentParser(
        description="Redraw a study's figures from its journal.", exit_on_error=False
    )
    subs["plot"].add_argument("run_dir", type=str)

    helps = {
        "train": "train once at a given learning rate",
        "bo": "run the study",
        "evaluate": "test the best checkpoint",
        "plot": "redraw figures without training",
    }
    for name, sub in subs.items():
        commands.add_subcommand(name, sub, help=helps[name])
    return parser, subs


def refuse_unknown_fields(command: str, argv: list[str]) -> None:
    """Refuse unknown config fields in flags and ``--config`` files, naming the allowed ones.

    Raises:
        ConfigError: A flag or a YAML key is not a field of :class:`Config`.
    """
    if command not in EXTRA_FLAGS:
        return
    for path in config_files(argv):
        _check_yaml(path)
    for token in argv:
        if not token.startswith("--"):
            continue
        name = token[2:].split("=", 1)[0]
        if name == "config":
            continue  # the files were checked above
        if name not in EXTRA_FLAGS[command]:
            problem = unknown_field(name)
            if problem:
                raise ConfigError(problem)


def _check_yaml(path: str) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as err:
        raise ConfigError(f"--config {path}: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"--config {path}: not valid YAML ({err})") from err
    if data is None:
        raise ConfigError(f"--config {path}: the file is empty")
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of config sections")
    for key in _flatten_keys(data):
        problem = unknown_field(key)
        if problem:
            raise ConfigError(f"{path}: {problem}")


def _flatten_keys(data: dict) -> list[str]:
    """Top-level keys, and ``section.field`` for the keys of each section mapping."""
    out = []
    for key, value in data.items():
        out.append(str(key))
        if isinstance(value, dict):
            out.extend(f"{key}.{field}" for field in value)
    return out


def config_files(argv: list[str]) -> list[str]:
    """The files given with ``--config FILE`` or ``--config=FILE``."""
    files = []
    for i, token in enumerate(argv):
        if token == "--config" and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif token.startswith("--config="):
            files.append(token.split("=", 1)[1])
    return files


def one_line(err: BaseException) -> str:
    """An exception's message on one line, without terminal escapes, at most ``MAX_LINE``."""
    plain = ANSI_ESCAPE.sub("", str(err))
    text = " ".join(part.strip() for part in plain.splitlines() if part.strip())
    text = text or type(err).__name__
    if len(text) <= MAX_LINE:
        return text
    # The middle goes: a message starts with what failed and ends with what to do.
    half = (MAX_LINE - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


def quiet_libraries() -> None:
    """Silence library chatter (tips, worker advice) so progress lines stay readable."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # (torch.jit's FutureWarning is filtered once, in boresnet/__init__.py, before any
    # library imports: by the time this runs it has already been raised.)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*treespec.*")
    warnings.filterwarnings("ignore", message=".*on_after_batch_transfer.*")
    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``boresnet`` console script.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    quiet_libraries()
    parser, subs = build_parsers()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in subs:
            refuse_unknown_fields(argv[0], argv[1:])
        ns = parser.parse_args(argv)
        command = ns.command
        sub_ns = ns[command]
        if command == "train":
            return cmd_train(sub_ns)
        if command == "bo":
            return cmd_bo(subs["bo"], sub_ns, argv[1:])
        if command == "evaluate":
            return cmd_evaluate(sub_ns.run_dir, sub_ns.data_dir, sub_ns.accelerator)
        return cmd_plot(sub_ns.run_dir)
    except ArgumentError as err:
        # jsonargparse names the key; name the file it may have come from too.
        files = config_files(argv)
        where = f" (in {', '.join(files)} or the flags)" if files else ""
        print(f"boresnet: error: {one_line(err)}{where}", file=sys.stderr)
        return EXIT_USAGE
    except USER_ERRORS as err:
        print(f"boresnet: error: {one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("boresnet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        close_process_group()
