"""The run directory: everything needed to audit a run, and to resume it after a crash.

    RUN_DIR/
      manifest.json   what the run is: hashes of the policy, plan, dataset and replay table,
                      the backend, the seed, the ttc version, when and how it was started
      plan.yaml       a byte-for-byte copy of the plan
      policy.ttc      a copy of the policy source (its sha256 is the plan's source_sha256)
      samples.jsonl   every sample, appended and fsynced as each request comes back (openai, vllm)
                      or once per round (a SampleStore)
      results.jsonl   one line per query: bin, target, samples, answer, correct (at the end)
      report.json     the run's report (at the end)
      .ttc-lock       the writer lock (the pid of the process writing the run)

The directory is created only after every input was validated, built beside its final name and
renamed into place when complete (:mod:`ttcdsl.runtime.staging`), and removed again if the run
fails or is interrupted before it stored a sample (the old run a ``--force`` replaced is put
back), so a failed or killed start leaves nothing behind. One process writes a run directory at
a time (:mod:`ttcdsl.runtime.lock`). The dataset and the replay table are referenced by path and
content hash (they may be large); a resume checks the hashes, so a changed input is refused
instead of silently mixing two runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttcdsl.datasets import Dataset
from ttcdsl.datasets.schema import dumps_query
from ttcdsl.errors import UserError
from ttcdsl.samples.atomic import atomic_writer
from ttcdsl.samples.schema import RunMeta

MANIFEST = "manifest.json"
PLAN = "plan.yaml"
POLICY = "policy.ttc"
SAMPLES = "samples.jsonl"
RESULTS = "results.jsonl"
REPORT = "report.json"
MANIFEST_VERSION = 1


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_hash(dataset: Dataset) -> str:
    """A hash of the queries (their JSONL form, in dataset order); the file's name is not part."""
    digest = hashlib.sha256()
    for query in dataset:
        digest.update(dumps_query(query).encode("utf-8") + b"\n")
    return "ttc-queries-v1:sha256:" + digest.hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """What a run is (module docstring). Input paths are stored absolute (runs made before
    that stored them as given on the command line)."""

    policy_sha256: str
    plan_sha256: str
    dataset_sha256: str
    dataset_path: str
    backend: str
    model: str | None
    table_sha256: str | None
    table_path: str | None
    seed: int
    queries: int
    ttc_version: str
    created_at: str
    command: tuple[str, ...]
    # reward-model scorer -> score column of the replay table (the run reads scorers by name)
    score_columns: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ttc_run": MANIFEST_VERSION,
            "policy_sha256": self.policy_sha256,
            "plan_sha256": self.plan_sha256,
            "dataset": {"path": self.dataset_path, "sha256": self.dataset_sha256,
                        "queries": self.queries},
            "backend": {"name": self.backend, "model": self.model,
                        "table": self.table_path, "table_sha256": self.table_sha256},
            "seed": self.seed,
            "ttc_version": self.ttc_version,
            "created_at": self.created_at,
            "command": list(self.command),
            "score_columns": dict(self.score_columns),
        }

    @classmethod
    def from_dict(cls, data: Any, path: Path) -> Manifest:
        if not isinstance(data, Mapping):  # a JSON array or number crashed here (exit 3)
            raise UserError(f"{path}: not a ttc run manifest (a JSON {type(data).__name__}, not an "
                            "object)")
        field = "ttc_run"  # the field being read, for the message

        def get(*keys: str) -> Any:
            nonlocal field
            field = ".".join(keys)
            value = data
            for key in keys:
                value = value[key]
            return value

        def get_optional(key: str) -> Any:
            nonlocal field
            field = key
            return data.get(key)

        try:
            if data.get("ttc_run") != MANIFEST_VERSION:
                raise KeyError("ttc_run")
            return cls(
                policy_sha256=get("policy_sha256"),
                plan_sha256=get("plan_sha256"),
                dataset_sha256=get("dataset", "sha256"),
                dataset_path=get("dataset", "path"),
                queries=int(get("dataset", "queries")),
                backend=get("backend", "name"),
                model=get("backend", "model"),
                table_path=get("backend", "table"),
                table_sha256=get("backend", "table_sha256"),
                seed=int(get("seed")),
                ttc_version=get("ttc_version"),
                created_at=get("created_at"),
                command=tuple(get("command")),
                score_columns=_score_columns(get_optional("score_columns") or {}),
            )
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path}: not a ttc run manifest (field {field!r})") from None


def _score_columns(data: Any) -> dict[str, str]:
    if not isinstance(data, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise TypeError("score_columns")
    return dict(data)


def write_json(path: Path, data: Any) -> None:
    with atomic_writer(path) as handle:
        json.dump(data, handle, indent=1, ensure_ascii=False, allow_nan=False)
        handle.write("\n")


def read_manifest(run_dir: Path) -> Manifest:
    path = run_dir / MANIFEST
    if not run_dir.exists():
        raise UserError(f"{run_dir}: no such run directory")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: a file, not a run directory",
                        hint="give the directory ttc run --out wrote")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{run_dir}: not a run directory (no {MANIFEST})",
            hint="start the run with ttc run PLAN --out RUN_DIR",
        ) from None
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot read the manifest: {error}") from None
    return Manifest.from_dict(data, path)


def write_run_files(
    directory: Path, manifest: Manifest, plan_text: bytes, policy_text: bytes, meta: RunMeta
) -> None:
    """Write a new run's files into ``directory`` (the hidden directory it is built in, see
    :mod:`ttcdsl.runtime.staging`): the manifest, with absolute input paths so the run can be
    resumed and reported from any working directory, the plan and policy copies, and the samples
    header."""
    from ttcdsl.samples import SampleStore

    manifest = dataclasses.replace(
        manifest,
        dataset_path=os.path.abspath(manifest.dataset_path),
        table_path=None if manifest.table_path is None else os.path.abspath(manifest.table_path),
    )
    write_json(directory / MANIFEST, manifest.to_dict())
    with atomic_writer(directory / PLAN, mode="wb") as handle:
        handle.write(plan_text)
    with atomic_writer(directory / POLICY, mode="wb") as handle:
        handle.write(policy_text)
    SampleStore.create(directory / SAMPLES, meta)


def check_samples_header(run_dir: Path, manifest: Manifest, meta: RunMeta) -> None:
    """Refuse a samples file whose header belongs to another run than the manifest's (another
    seed, policy, backend or model): resuming it would mix two runs' samples."""
    for what, header, mine in (
        ("seed", meta.seed, manifest.seed),
        ("policy sha256", meta.policy_hash, manifest.policy_sha256),
        ("backend", meta.backend, manifest.backend),
        ("model", meta.model, manifest.model),
    ):
        if header != mine:
            raise UserError(
                f"{run_dir / SAMPLES}: its header says {what} {header!r}, but "
                f"{run_dir / MANIFEST} says {mine!r}: the samples file belongs to another run",
                hint="put back the run's own samples file, or start a new run with --out",
            )


def remove_run_dir(run_dir: Path, *, keep_dir: bool = False) -> None:
    """Remove a run directory this process created (a failed start)."""
    if keep_dir:
        for child in run_dir.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
