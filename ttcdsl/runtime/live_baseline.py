"""The uniform baseline of a live run: ``ttc run --backend vllm|openai --baseline``.

A replay run's report compares it with uniform allocation at equal spend drawn from the same
table (:func:`ttcdsl.runtime.report.uniform_baseline`). A live run gets the same baseline, by the
same function, at the run's realized spend, served through a :class:`~ttcdsl.runtime.reuse.
ReuseBackend`: uniform's sample ``j`` of query ``q`` has the run's seed for ``(q, j)``, so where
the run drew that sample with the policy's global sampling parameters (the probe, and every bin
that does not override them) it IS the run's sample and is reused; only the others are generated.

Those extra samples go to their own store, ``RUN_DIR/baseline/samples.jsonl`` (the same
append-only, fsynced :class:`~ttcdsl.samples.store.SampleStore`), so ``RUN_DIR/samples.jsonl``
stays the policy's samples table (and a calibration table for ``ttc plan -c``). A pass killed
after an append resumes (``ttc run --resume``) without generating those samples again; a torn
last line is cut off, and its samples generated again, as for the run's own store.

The baseline is opt-in (it costs generation): a run started with ``--baseline`` records it in its
samples header, so a resume keeps it; ``ttc run --resume RUN_DIR --baseline`` adds one to a live
run that has none (a finished run generates nothing but the baseline).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ttcdsl.errors import UserError
from ttcdsl.lang import ir
from ttcdsl.runtime.report import uniform_baseline, uniform_shares
from ttcdsl.runtime.reuse import Hook, ReuseBackend
from ttcdsl.samples.schema import RunMeta, SampleRow
from ttcdsl.samples.store import SampleStore

BASELINE_SAMPLES = Path("baseline") / "samples.jsonl"
NOTE = "uniform_baseline"
"""The samples-header note of a run started with ``--baseline``."""

FLAG_HINT = (
    "a live run has a uniform baseline only when asked: ttc run ... --baseline (or ttc run "
    "--resume RUN_DIR --baseline) generates the samples it needs that the run did not draw"
)


def wanted(run_dir: Path, meta: RunMeta, flag: bool) -> bool:
    """Whether a (resumed) live run computes its baseline: asked now, asked when the run
    started (its samples header says so), or a baseline pass already began."""
    return bool(flag or meta.notes.get(NOTE) or (run_dir / BASELINE_SAMPLES).exists())


def open_store(run_dir: Path, run_meta: RunMeta, *, say: Callable[[str], None]) -> SampleStore:
    """``RUN_DIR/baseline/samples.jsonl``, created on the first pass (its header: the run's, as
    the source says) or reopened, a torn last line cut off (and said); a store of another run
    (seed, policy, backend, model) is refused."""
    from ttcdsl.samples import TornLineError, repair

    path = run_dir / BASELINE_SAMPLES
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        source = f"{run_meta.source or 'ttc run'}: uniform baseline (samples the run did not draw)"
        notes = {k: v for k, v in run_meta.notes.items() if k != NOTE}
        return SampleStore.create(path, dataclasses.replace(run_meta, source=source, notes=notes))
    try:
        store = SampleStore.open(path)
    except TornLineError:
        report = repair(path)
        say(f"{path}: cut off a torn last line (line {report.line}, {report.removed} bytes) left "
            "by an interrupted write; its samples are generated again")
        store = SampleStore.open(path)
    meta = store.meta()
    for what in ("seed", "policy_hash", "backend", "model"):
        if getattr(meta, what) != getattr(run_meta, what):
            raise UserError(
                f"{path}: its header says {what} {getattr(meta, what)!r}, but the run's samples "
                f"say {getattr(run_meta, what)!r}: the baseline store belongs to another run",
                hint=f"delete {path} to generate the baseline again",
            )
    return store


def baseline_pass(
    backend,
    policy: ir.Policy,
    query_ids: Sequence[str],
    seed: int,
    run_rows: Mapping[str, Sequence[SampleRow]],
    store: SampleStore,
    *,
    say: Callable[[str], None],
    hook: Hook | None = None,
) -> Callable[[int], dict[str, Any]]:
    """The run report's baseline callable (spend -> baseline) of a live run. ``run_rows``: the
    run's samples drawn with ``policy.sampling`` (:meth:`ttcdsl.runtime.executor.Executor.
    rows_drawn_with`); ``store``: the baseline's own (:func:`open_store`)."""

    def baseline(spend: int) -> dict[str, Any]:
        own = [row for rows in run_rows.values() for row in rows]
        stored = list(store.load().rows())
        reuse = ReuseBackend(backend, [*own, *stored], store=store, hook=hook)
        shares = uniform_shares(query_ids, spend, seed)
        run_keys = {(row.query_id, row.sample_index) for row in own}
        stored_keys = {(row.query_id, row.sample_index) for row in stored}
        keys = {(q, i) for q, n in shares.items() for i in range(n)}
        to_generate = reuse.missing(shares)
        per = f"{min(shares.values())}" + (
            f" or {max(shares.values())}" if max(shares.values()) != min(shares.values()) else "")
        say(f"uniform baseline at equal spend: {spend} samples ({per} per query): "
            f"{len(keys & run_keys)} are the run's own, {len(keys & stored_keys)} stored by an "
            f"earlier baseline pass, {to_generate} to generate")
        base = uniform_baseline(reuse, policy, query_ids, spend, seed, live=True)
        used_run = len(reuse.served & run_keys)
        extra = len(reuse.served - run_keys)
        base["live"] = {
            "run_samples": used_run,
            "extra_samples": extra,
            "generated": reuse.generated,
            "store": str(BASELINE_SAMPLES),
            "how": f"{used_run} of the run's own samples reused; {extra} extra samples in "
            f"{BASELINE_SAMPLES} ({reuse.generated} generated by this process)",
        }
        return base

    return baseline
