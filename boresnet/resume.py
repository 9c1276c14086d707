"""Checks that make ``--resume`` safe: the right folder, the same study, a sane journal.

A resumed study keeps its ``config.yaml``; only fields that do not change results
(where the data lives, the hardware, the budget, the progress bar) may be overridden.
Every journal line carries the search space and a fingerprint of the config it was
written with, so a journal copied from another study is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from boresnet.config import Config, ConfigError, from_dict, to_dict
from boresnet.journal import JOURNAL, JournalError, read_journal
from boresnet.space import SearchSpace

# Fields a resumed study may change: none of them changes what a trial computes.
RESUMABLE = {
    "data.data_dir",
    "data.download",
    "data.num_workers",
    "data.loader",
    "search.budget",
    "trainer.progress_bar",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.strategy",
    "trainer.num_nodes",
    "out",
}


class ResumeError(RuntimeError):
    """The folder or journal cannot be resumed; the message says why."""


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts into dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def study_fingerprint(config: Config) -> str:
    """A short hash of every config field that changes results."""
    fields = {k: v for k, v in flatten(to_dict(config)).items() if k not in RESUMABLE}
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_run_config(run_dir: Path) -> Config:
    """Read a run folder's ``config.yaml``, refusing folders that are not run folders."""
    path = run_dir / "config.yaml"
    if not run_dir.is_dir() or not path.exists():
        raise ResumeError(f"{run_dir} is not a boresnet run folder (no config.yaml)")
    try:
        return from_dict(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, TypeError, ConfigError) as err:
        raise ResumeError(f"{path} is not a valid boresnet config: {err}") from err


def check_journal(config: Config, run_dir: Path) -> None:
    """Refuse a journal written for another search space or config."""
    space = SearchSpace(config.search.params).describe()
    sha = study_fingerprint(config)
    for number, rec in enumerate(read_journal(run_dir / JOURNAL), start=1):
        if rec.get("space", space) != space:
            raise ResumeError(
                f"{run_dir / JOURNAL}, line {number}: field search.params differs: the journal "
                f"searched {rec.get('space')}, config.yaml searches {space}"
            )
        if rec.get("config_sha", sha) != sha:
            raise ResumeError(
                f"{run_dir / JOURNAL}, line {number} was written with a different config "
                f"(fingerprint {rec.get('config_sha')} != {sha} of config.yaml)"
            )


def check_resume(parser, ns, argv: list[str], run_dir: Path, saved: Config) -> Config:
    """Apply command-line overrides to a saved config, refusing result-changing ones.

    Args:
        parser: The ``bo`` subcommand parser.
        ns: Its namespace as parsed.
        argv: The ``bo`` arguments as typed.
        run_dir: The folder to resume.
        saved: Its ``config.yaml``.

    Returns:
        The config to continue with.
    """
    from boresnet.cli import config_from

    if ns.config:
        raise ResumeError(
            "--config cannot be combined with --resume: a resumed study keeps its config.yaml"
        )
    # The saved config first, then whatever was typed on top of it.
    config = config_from(
        parser, parser.parse_args(["--config", str(run_dir / "config.yaml"), *argv])
    )
    before, after = flatten(to_dict(saved)), flatten(to_dict(config))
    for key in before:
        if key not in RESUMABLE and before[key] != after.get(key):
            raise ResumeError(
                f"--resume: field {key} differs from {run_dir / 'config.yaml'} "
                f"({before[key]!r} there, {after.get(key)!r} here); a resumed study keeps "
                f"its config (only {', '.join(sorted(RESUMABLE))} may change)"
            )
    try:
        check_journal(config, run_dir)
    except JournalError as err:
        raise ResumeError(str(err)) from err
    return config
