"""Checks that make ``--resume`` safe: the right folder, the same study, a sane journal.

A resumed study keeps its ``config.yaml``; only fields that do not change results
(where the data lives, the loader, the budget, the progress bar) may be overridden.
Every journal line carries the search space and a fingerprint of the config it was
written with, so a journal copied from another study is refused.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jsonargparse import ArgumentParser, Namespace

from boresnet.config.schema import Config, config_from, from_dict, to_dict
from boresnet.study.adapter import search_space
from boresnet.study.journal import JournalError, read_journal
from boresnet.study.run_folder import RunFolder, RunFolderError

# Fields a resumed study may change: none of them changes what a trial computes. The
# data folder may move, but the study checks that its content is the same (every
# journal record carries the data's fingerprint: boresnet/study/loop.py). The loader and its
# workers give the same batches (tests/test_trial.py). Not here, so refused: the
# trainer's accelerator (it sets the default precision), devices, nodes and strategy
# (under DDP they change the global batch and the reduction of every gradient). How
# many trials run at once, and where, changes the order of proposals, never a trial.
RESUMABLE = {
    "search.parallel",
    "engine.address",
    "engine.gpus_per_trial",
    "engine.cpus_per_trial",
    "engine.connect_timeout_s",
    "data.data_dir",
    "data.download",
    "data.num_workers",
    "data.loader",
    "search.budget",
    "trainer.progress_bar",
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


def fingerprinted_fields(config: Config) -> dict[str, Any]:
    """Every config field that changes results, by dotted name, as plain data."""
    data = json.loads(json.dumps(flatten(to_dict(config)), default=str))
    return {k: v for k, v in data.items() if k not in RESUMABLE}


def study_fingerprint(config: Config) -> str:
    """A short hash of every config field that changes results."""
    text = json.dumps(fingerprinted_fields(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def changed_fields(config: Config, folder: RunFolder) -> str:
    """The fields of ``config`` that differ from the study's ``origin.yaml``, in words."""
    origin = folder.read_origin()
    if origin is None:
        return "the fields that differ are unknown: this folder has no origin.yaml"
    now = fingerprinted_fields(config)
    diffs = [
        f"{k} ({origin.get(k)!r} then, {now.get(k)!r} now)"
        for k in sorted(set(origin) | set(now))
        if origin.get(k) != now.get(k)
    ]
    return "field(s) " + ", ".join(diffs) if diffs else "no field differs from origin.yaml"


def load_run_config(folder: RunFolder) -> Config:
    """Read a run folder's ``config.yaml`` (``yaml.safe_load``), refusing anything else.

    Raises:
        ResumeError: Not a run folder, or its config is empty, not YAML or invalid.
    """
    try:
        return from_dict(folder.read_config_data())
    except RunFolderError as err:
        raise ResumeError(str(err)) from err
    except (TypeError, ValueError) as err:
        raise ResumeError(f"{folder.config} is not a valid boresnet config: {err}") from err


def check_journal(config: Config, folder: RunFolder) -> None:
    """Refuse a journal written for another search space or config."""
    search = search_space(config)
    space = search.describe()
    sha = study_fingerprint(config)
    records = read_journal(folder.journal, check_params=search.check)
    for number, rec in enumerate(records, start=1):
        if rec.space is not None and rec.space != space:
            raise ResumeError(
                f"{folder.journal}, line {number}: field search.params differs: the journal "
                f"searched {rec.space}, config.yaml searches {space}"
            )
        if rec.config_sha is not None and rec.config_sha != sha:
            raise ResumeError(
                f"{folder.journal}, line {number} was written with a different config "
                f"than config.yaml: {changed_fields(config, folder)}"
            )


def check_resume(
    parser: ArgumentParser, ns: Namespace, argv: list[str], folder: RunFolder
) -> Config:
    """Apply command-line overrides to a saved config, refusing result-changing ones.

    Args:
        parser: The ``bo`` subcommand parser.
        ns: Its namespace as parsed.
        argv: The ``bo`` arguments as typed.
        folder: The folder to resume.

    Returns:
        The config to continue with.
    """
    saved = load_run_config(folder)
    if ns.config:
        raise ResumeError(
            "--config cannot be combined with --resume: a resumed study keeps its config.yaml"
        )
    # The saved config first, then whatever was typed on top of it.
    config = config_from(parser.parse_args(["--config", str(folder.config), *argv]).as_dict())
    before, after = flatten(to_dict(saved)), flatten(to_dict(config))
    for key in before:
        if key not in RESUMABLE and before[key] != after.get(key):
            raise ResumeError(
                f"--resume: field {key} differs from {folder.config} "
                f"({before[key]!r} there, {after.get(key)!r} here); a resumed study keeps "
                f"its config (only {', '.join(sorted(RESUMABLE))} may change)"
            )
    try:
        check_journal(config, folder)
    except JournalError as err:
        raise ResumeError(str(err)) from err
    return config
