"""Command-line interface: ``boresnet train | bo | evaluate | plot``.

Arguments are parsed by :mod:`jsonargparse` straight into the dataclasses of
:mod:`boresnet.config`, so every config field is also a flag (``--trainer.devices 2``)
and a YAML file is ``--config FILE``. Errors are one line on stderr, exit status 2.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
import warnings
from argparse import ArgumentError
from collections.abc import Sequence
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from boresnet.config import Config, ConfigError, from_dict, to_dict

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


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


def build_parser() -> ArgumentParser:
    """Return the ``boresnet`` parser with its four subcommands."""
    parser = ArgumentParser(
        prog="boresnet",
        exit_on_error=False,
        description="Bayesian optimisation of a ResNet-9's SGD learning rate on KMNIST.",
    )
    commands = parser.add_subcommands(dest="command")

    train = _config_parser("Train one trial and print its result as JSON.")
    train.add_argument("--lr", type=float | None, default=None, help="learning rate")
    commands.add_subcommand("train", train, help="train once at a given learning rate")

    bo = _config_parser("Run (or resume) a Bayesian optimisation study.")
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
        help="exact run folder (default: OUT/bo-TIMESTAMP)",
    )
    commands.add_subcommand("bo", bo, help="run the study")

    evaluate = ArgumentParser(
        description="Evaluate a study's best.ckpt on a test split.", exit_on_error=False
    )
    evaluate.add_argument("run_dir", type=str)
    evaluate.add_argument("--data-dir", type=str | None, default=None)
    evaluate.add_argument("--accelerator", type=str, default="auto")
    commands.add_subcommand("evaluate", evaluate, help="test the best checkpoint")

    plot = ArgumentParser(
        description="Redraw a study's figures from its journal.", exit_on_error=False
    )
    plot.add_argument("run_dir", type=str)
    commands.add_subcommand("plot", plot, help="redraw figures without training")
    return parser


def config_from(parser: ArgumentParser, ns: Namespace) -> Config:
    """Instantiate the validated :class:`Config` from a subcommand's namespace.

    The shortcut flags ``--data-dir`` and ``--budget`` are applied, then validated again.
    """
    shortcuts = {"data_dir": ns.get("data_dir"), "budget": ns.get("budget")}
    ns = ns.clone()
    for key in ("config", "data_dir", "lr", "budget", "resume", "run_dir", "__path__"):
        if key in ns:
            del ns[key]
    config = parser.instantiate(ns)
    config = Config(
        **{k: config[k] for k in ("data", "model", "optim", "trainer", "search", "seed", "out")}
    )
    if shortcuts["data_dir"]:
        config.data.data_dir = shortcuts["data_dir"]
    if shortcuts["budget"] is not None:
        config.search.budget = shortcuts["budget"]
    return from_dict(to_dict(config))


def _allowed_fields(section: str) -> list[str] | None:
    """Field names of a config section (``""`` for the top level), if it is one."""
    default = Config()
    if not section:
        return [f.name for f in dataclasses.fields(default)]
    value = getattr(default, section, None)
    return [f.name for f in dataclasses.fields(value)] if dataclasses.is_dataclass(value) else None


def _one_line(err: BaseException) -> str:
    text = " ".join(part.strip() for part in str(err).splitlines() if part.strip())
    unknown = (
        re.search(r"unrecognized arguments: --([\w.]+)", text)
        or re.search(r"Subcommand '\w+' does not accept option '([\w.]+)'", text)
        or re.search(r"Group '([\w.]+)' does not accept option '(\w+)'", text)
    )
    if unknown:
        key = ".".join(g for g in unknown.groups() if g)
        section = key.rpartition(".")[0]
        allowed = _allowed_fields(section)
        if allowed:
            where = f"{section}." if section else ""
            text = f"unknown field {key!r}; allowed in {section or 'the top level'}: " + ", ".join(
                where + a for a in allowed
            )
    return text or type(err).__name__


def quiet_libraries() -> None:
    """Silence library chatter (tips, worker advice) so progress lines stay readable."""
    # Lightning's and PyTorch's advice (workers, tips) drowns our own progress lines.
    # Lightning sets its loggers to INFO when imported, so import it first.
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.script.*")
    import lightning.pytorch  # noqa: F401

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*treespec.*")
    warnings.filterwarnings("ignore", message=".*on_after_batch_transfer.*")
    os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")


def cmd_train(ns: Namespace, config: Config) -> int:
    """Run one trial and print its result; the last stdout line is JSON."""
    from boresnet.trial import run_trial

    lr = ns.lr if ns.lr is not None else config.optim.lr
    if not lr > 0:
        raise CliError(f"--lr: must be > 0, got {lr}")
    result = run_trial(config, {"lr": lr}, seed=config.seed, log_dir=config.out, name="train")
    record: dict[str, Any] = {"lr": lr, **result.to_dict()}
    if result.status != "ok":
        print(f"trial {result.status}: {result.error}", file=sys.stderr)
    print(json.dumps(record))
    return 1 if result.status == "failed" else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``boresnet`` console script.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    quiet_libraries()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    from boresnet.data import DatasetError
    from boresnet.journal import JournalError, RunFolderBusy
    from boresnet.report import CheckpointError
    from boresnet.resume import ResumeError
    from boresnet.study import StudyError

    try:
        ns = parser.parse_args(argv)
        command = ns.command
        sub = parser._subcommands_action._name_parser_map[command]
        sub_ns = ns[command]
        if command == "train":
            config = config_from(sub, sub_ns)
            return cmd_train(sub_ns, config)
        if command == "bo":
            from boresnet.study import cmd_bo

            return cmd_bo(sub, sub_ns, argv[1:])
        if command == "evaluate":
            from boresnet.report import cmd_evaluate

            return cmd_evaluate(sub_ns.run_dir, sub_ns.data_dir, sub_ns.accelerator)
        if command == "plot":
            from boresnet.report import cmd_plot

            return cmd_plot(sub_ns.run_dir)
        raise CliError(f"unknown command {command!r}")
    except (
        ArgumentError,
        ConfigError,
        CliError,
        DatasetError,
        ValueError,
        JournalError,
        RunFolderBusy,
        ResumeError,
        StudyError,
        CheckpointError,
    ) as err:
        print(f"boresnet: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("boresnet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
