"""`ttc run`: execute a plan over a dataset with a backend, into a resumable run directory.

    ttc run PLAN --queries DATASET.jsonl --backend replay --samples TABLE --out RUN_DIR [--seed S]
    ttc run BANDIT_POLICY.ttc --queries ... --out RUN_DIR     # a bandit needs no plan
    ttc run --resume RUN_DIR

A bandit policy (``allocate bandit``) runs straight from its ``.ttc`` file: its plan holds only its
settings (:mod:`ttcdsl.planner.online`) and is written into the run directory. The policy defaults
to the file the plan records (``--policy`` to point elsewhere); its sha256 must equal the plan's
``policy.source_sha256``. Every input is validated before the run directory is created, so a
refused run leaves nothing behind. Progress goes to standard error; the report goes to standard
output at the end (and to ``RUN_DIR/report.json``).

A live run (``--backend vllm|openai``) with ``--baseline`` also reports uniform allocation at
equal spend: its samples beyond the run's own are generated into ``RUN_DIR/baseline/`` after the
run (:mod:`ttcdsl.runtime.live_baseline`); ``--resume RUN_DIR --baseline`` adds one to a run.

A resume rebuilds the run's state from ``RUN_DIR/samples.jsonl`` and goes on (see
:mod:`ttcdsl.runtime.executor`); a torn last line, left by a crash in the middle of a write, is
cut off (and said so) first. Inputs given with ``--resume`` must be the run's own (same hashes).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys

BACKENDS = ("replay", "vllm", "openai")
LIVE_BACKENDS = ("vllm", "openai")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="execute a plan with a backend into a resumable run directory",
        description="Run a plan over a dataset: probe, bin, sample up to each query's target "
        "under the budget, stop early where the policy says, aggregate, report. A bandit policy "
        "runs from its .ttc file and decides online which queries get each round.",
    )
    parser.add_argument(
        "plan", nargs="?", metavar="PLAN",
        help="plan file (ttc plan -o ...), or a bandit policy's .ttc file",
    )
    parser.add_argument("--queries", metavar="DATASET", help="dataset JSONL (the batch to run)")
    parser.add_argument(
        "--backend", default="replay", metavar="NAME",
        help="where samples come from: replay (logged samples), vllm (an in-process engine) "
        "or openai (OpenAI-compatible servers)",
    )
    parser.add_argument("--samples", metavar="TABLE", help="replay: the logged samples table")
    parser.add_argument(
        "--endpoint", action="append", default=[], metavar="URL",
        help="openai: a server's URL (http://host:port or .../v1); repeat for a pool",
    )
    parser.add_argument(
        "--backend-option", action="append", default=[], metavar="KEY=VALUE",
        help="vllm/openai settings, e.g. model=DIR, dtype=float32, max_model_len=2048, "
        "kv_cache_memory_bytes=1G (vllm); concurrency=8, timeout=300, retries=4 (openai); "
        "scorer.NAME.model=DIR, scorer.NAME.endpoint=URL (a reward-model scorer; README)",
    )
    parser.add_argument("--out", metavar="RUN_DIR", help="the run directory to create")
    parser.add_argument(
        "--seed", type=_seed, default=None, help="run seed (default 0; a resume keeps the run's)"
    )
    parser.add_argument("--policy", metavar="POLICY", help="the policy file (default: the plan's)")
    parser.add_argument(
        "--score", action="append", default=[], metavar="SCORER=COLUMN",
        help="replay: read the policy's reward-model scorer from this score column of the table "
        "(default: the mapping the plan was calibrated with)",
    )
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    parser.add_argument(
        "--baseline", action="store_true",
        help="vllm/openai: also report uniform allocation at equal spend, generating the samples "
        "it needs that the run did not draw (into RUN_DIR/baseline/); replay runs always have it",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress, no report table")
    parser.add_argument(
        "--force", action="store_true",
        help="replace RUN_DIR if it is an existing run directory (never any other directory)",
    )
    parser.set_defaults(run=run)
    from ttcdsl.cli.usage import remember_parser

    remember_parser(parser)


def _seed(text: str) -> int:
    """--seed: an integer from 0 to 2^63 - 1 (random generators take no negative seeds, and a
    request's seed is a 64-bit integer for the backends)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {2**63 - 1}, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ttcdsl.errors import UserError

    if args.resume:
        if args.out:
            raise UserError("--resume continues RUN_DIR in place; leave out --out")
        if args.force:
            raise UserError("--resume continues RUN_DIR; --force would replace it: choose one")
        if args.policy:
            # the run goes on with the policy it started with, kept in RUN_DIR; another was
            # taken silently and dropped
            raise UserError("--resume continues RUN_DIR with the policy it started with (kept in "
                            "the run directory); leave out --policy",
                            hint="to run another policy, start a new run with --out")
        return _resume(args, Path(args.resume))
    missing = [
        flag for flag, value in (("PLAN", args.plan), ("--queries", args.queries),
                                 ("--out", args.out)) if not value
    ]
    if missing:  # a command line without what it must name: a usage error (exit 2)
        from ttcdsl.cli.usage import usage_error

        usage_error(args, f"ttc run needs {', '.join(missing)}", hint="or --resume RUN_DIR")
    if args.seed is None:
        args.seed = 0
    inputs = _inputs(args, plan_path=Path(args.plan), policy_path=args.policy)
    out = Path(args.out)
    import functools

    from ttcdsl.runtime.live_baseline import NOTE
    from ttcdsl.runtime.rundir import SAMPLES, write_run_files
    from ttcdsl.runtime.staging import create_run_dir
    from ttcdsl.samples import RunMeta, SampleStore

    meta = RunMeta(
        policy_hash=inputs.policy.source_hash,
        model=inputs.backend.model,
        backend=inputs.backend.name,
        seed=args.seed,
        source=f"ttc run {inputs.plan['policy']['name']}",
        notes=({"backend_settings": inputs.backend.settings,
                **({NOTE: True} if args.baseline else {})} if inputs.live else {}),
    )
    populate = functools.partial(
        write_run_files, manifest=inputs.manifest(sys.argv), plan_text=inputs.plan_bytes,
        policy_text=inputs.policy_bytes, meta=meta,
    )
    with _disk_errors(out):
        # An empty directory the user made for the run is kept if the run fails before it starts.
        existed = out.is_dir() and not out.is_symlink() and not any(out.iterdir())
        new_run = create_run_dir(out, populate, force=args.force)
    with new_run.lock, _disk_errors(out):
        try:
            # the old run a --force replaces is deleted once this one has stored a sample
            executor = inputs.executor(SampleStore.open(out / SAMPLES), args.quiet,
                                       on_stored=new_run.drop_old)
        except BaseException as error:
            _stopped_before_storing(new_run, out, existed, error)
            raise
        return _execute(executor, inputs, out, args.quiet, fresh=True, existed=existed,
                        baseline=args.baseline, new_run=new_run)


def _stopped_before_storing(new_run, out, existed: bool, error: BaseException) -> None:
    """A new run stopped before it stored a sample: remove it, putting back the old run a
    --force replaced (a CTRL-C in the first round deleted the finished old run and left
    nothing), and on a CTRL-C say what ``out`` now holds."""
    replaced = new_run.replaced
    new_run.undo(keep_dir=existed)
    if not isinstance(error, KeyboardInterrupt):
        return
    if replaced:
        what = f"{out} holds the old run, as it was before this ttc run --force"
    elif existed:
        what = f"{out} is left empty, as it was"
    else:
        what = f"{out} was not created"
    print(f"ttc run: interrupted before the run stored any sample: {what}; run the command "
          "again to start it", file=sys.stderr)


@contextlib.contextmanager
def _disk_errors(out):
    """A run directory that cannot be written (read-only, full disk, no permission) is the
    user's to fix: say so (exit 1) instead of reporting an internal error."""
    import errno

    from ttcdsl.errors import UserError

    try:
        yield
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC,
                               errno.EDQUOT, errno.ENOTDIR, errno.EEXIST, errno.ENOENT,
                               errno.EISDIR):
            raise
        where = error.filename or out
        raise UserError(
            f"{where}: cannot write the run directory: {error.strerror}",
            hint="choose an --out on a writable file system with free space",
        ) from None


def _resume(args: argparse.Namespace, run_dir) -> int:
    from ttcdsl.runtime.lock import lock_run_dir
    from ttcdsl.runtime.rundir import read_manifest
    from ttcdsl.runtime.staging import recover

    with _disk_errors(run_dir):
        for line in recover(run_dir):  # what a killed ttc run --force left beside it
            print(f"ttc run: {line}", file=sys.stderr)
        read_manifest(run_dir)  # refuse a directory that is no run before locking it
        with lock_run_dir(run_dir):
            return _resume_locked(args, run_dir)


def _resume_locked(args: argparse.Namespace, run_dir) -> int:
    from ttcdsl.errors import UserError
    from ttcdsl.runtime.rundir import SAMPLES, check_samples_header, read_manifest
    from ttcdsl.samples import SampleStore, TornLineError, repair

    manifest = read_manifest(run_dir)  # again, under the lock
    if args.plan:
        from ttcdsl.runtime.rundir import file_sha256

        if args.plan.endswith(".ttc"):
            from ttcdsl.lang.api import load_policy

            if load_policy(args.plan).source_hash != manifest.policy_sha256:
                raise UserError(
                    f"{args.plan} is not the policy of {run_dir}",
                    hint="resume without PLAN (the run directory keeps its policy)",
                )
        elif file_sha256(args.plan) != manifest.plan_sha256:
            raise UserError(
                f"{args.plan} is not the plan of {run_dir}",
                hint="resume without PLAN (the run directory keeps its plan)",
            )
    if args.score:
        raise UserError(
            "--score is fixed when a run starts; a resume reads the run's own mapping",
            hint="leave out --score",
        )
    if args.backend != manifest.backend:
        raise UserError(f"{run_dir} ran with backend {manifest.backend!r}, not {args.backend!r}")
    args.queries = args.queries or manifest.dataset_path
    args.samples = args.samples or manifest.table_path
    if args.seed is not None and args.seed != manifest.seed:
        raise UserError(
            f"{run_dir} runs with seed {manifest.seed}, not {args.seed}",
            hint="a resume keeps the run's seed; leave out --seed, or start a new run with --out",
        )
    args.seed = manifest.seed
    args.manifest_score_columns = manifest.score_columns
    args.manifest_model = manifest.model
    inputs = _run_dir_inputs(args, run_dir, manifest)
    path = run_dir / SAMPLES
    try:
        store = SampleStore.open(path)
    except TornLineError:
        report = repair(path)
        print(
            f"ttc run: {path}: cut off a torn last line (line {report.line}, {report.removed} "
            "bytes) left by an interrupted write; its samples are asked for again",
            file=sys.stderr,
        )
        store = SampleStore.open(path)
    check_samples_header(run_dir, manifest, store.meta())
    if not inputs.live:
        _check_stored_replay(store, inputs.backend, path)
    baseline = False
    if inputs.live:
        from ttcdsl.cli.live import check_same_settings
        from ttcdsl.runtime.live_baseline import wanted

        check_same_settings(run_dir, manifest, store.meta(), inputs.backend)
        baseline = wanted(run_dir, store.meta(), args.baseline)
    executor = inputs.executor(store, args.quiet)
    return _execute(executor, inputs, run_dir, args.quiet, fresh=False, existed=True,
                    baseline=baseline)


def _check_stored_replay(store, backend, path) -> None:  # noqa: ANN001
    """Refuse to resume a replay whose stored samples were edited: the resume would take them
    as the run's and write a clean report of them (a file with every label set to true resumed
    into "accuracy 1, +30 points over uniform")."""
    from ttcdsl.errors import UserError

    count, shown = backend.contradictions(store.load().rows())
    if count:
        raise UserError(
            f"{path}: {count} stored samples are not what the replay served ({'; '.join(shown)}): "
            "the file was changed after the run stored them, and a resume would report them",
            hint="run again into a new --out (the run's samples come only from its replay table)",
        )


def _run_dir_inputs(args, run_dir, manifest) -> _Inputs:
    """The inputs of an existing run directory, checked to be the ones it was started with."""
    from ttcdsl.errors import UserError
    from ttcdsl.runtime.rundir import PLAN, POLICY

    inputs = _inputs(args, plan_path=run_dir / PLAN, policy_path=str(run_dir / POLICY))
    def short(sha) -> str:
        return "none" if not sha else str(sha).rsplit(":", 1)[-1][:12] + "..."

    for what, now, then, mine, theirs in (
        ("dataset", args.queries, manifest.dataset_path, inputs.dataset_sha,
         manifest.dataset_sha256),
        ("replay samples table", args.samples, manifest.table_path, inputs.table_sha,
         manifest.table_sha256),
        ("plan", run_dir / PLAN, run_dir / PLAN, inputs.plan_sha, manifest.plan_sha256),
    ):
        if mine != theirs:
            raise UserError(
                f"the {what} differs from the one {run_dir} was started with: {now or then} "
                f"has sha256 {short(mine)}, the run began with {then} at {short(theirs)}",
                hint="a run resumes only with its own inputs; restore them, or start a new run "
                "with --out",
            )
    return inputs


def partial_report(run_dir) -> dict:
    """The report of an unfinished run, from the samples it has stored so far; nothing is
    generated and the run directory is not changed (a torn last line is skipped, not cut).
    The uniform baseline is left out: it compares finished runs."""
    import shutil
    import tempfile
    from pathlib import Path

    from ttcdsl.runtime.report import build_report
    from ttcdsl.runtime.rundir import SAMPLES, check_samples_header, read_manifest
    from ttcdsl.samples import SampleStore, TornLineError, repair

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    args = argparse.Namespace(
        backend=manifest.backend, queries=manifest.dataset_path, samples=manifest.table_path,
        seed=manifest.seed, policy=None, plan=None, score=[],
        manifest_score_columns=manifest.score_columns, manifest_model=manifest.model,
        endpoint=[], backend_option=[], partial=True,
    )
    inputs = _run_dir_inputs(args, run_dir, manifest)
    with tempfile.TemporaryDirectory() as scratch:
        path = run_dir / SAMPLES
        torn = False
        try:
            store = SampleStore.open(path)
            store.load()
        except TornLineError:
            copy = Path(scratch) / SAMPLES
            shutil.copyfile(path, copy)
            repair(copy)
            store, torn = SampleStore.open(copy), True
        check_samples_header(run_dir, manifest, store.meta())
        try:
            outcome = inputs.executor(store, quiet=True).run(generate=False)
        finally:
            inputs.backend.close()
    report = build_report(outcome, inputs.plan, inputs.policy)
    # an unfinished run's figures are not what the plan predicts for a finished one: no z-score
    # (a run cut off after its probe read as a 31-sigma miss of the plan's samples per query)
    report["predicted"]["z"] = report["predicted"]["samples_z"] = None
    report["partial"] = {
        "stored_samples": outcome.reused,
        "torn_last_line_skipped": torn,
        "provisional_bins": outcome.provisional_bins,
        "how": f"from the samples stored so far; ttc run --resume {run_dir} finishes the run",
    }
    return report


def _execute(executor, inputs, run_dir, quiet: bool, *, fresh: bool, existed: bool,
             baseline: bool = False, new_run=None) -> int:
    """Run (or resume) to the end, then write the results and the report; ``baseline``: a live
    run's uniform baseline is generated before the backend is closed; ``new_run``: a fresh
    run's :class:`~ttcdsl.runtime.staging.NewRun`."""
    from ttcdsl.runtime.report import build_report, render_report
    from ttcdsl.runtime.rundir import REPORT, RESULTS, write_json
    from ttcdsl.samples.atomic import atomic_writer

    try:
        try:
            outcome = executor.run()
        except BaseException as error:
            if fresh and _nothing_stored(run_dir):
                _stopped_before_storing(new_run, run_dir, existed, error)
            else:
                if new_run is not None:
                    new_run.drop_old()
                if isinstance(error, KeyboardInterrupt):
                    print(f"ttc run: interrupted: {run_dir} keeps the {_stored(run_dir)} samples "
                          f"stored so far; ttc run --resume {run_dir} continues the run",
                          file=sys.stderr)
            raise
        if new_run is not None:
            new_run.drop_old()  # a run that stored nothing (nothing was asked) is still the run
        import json

        with atomic_writer(run_dir / RESULTS) as handle:
            for result in outcome.results:
                handle.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        from ttcdsl.runtime.live_baseline import FLAG_HINT

        unserved = _unserved(outcome)
        base, why = inputs.baseline, FLAG_HINT  # only a live run can lack one
        if unserved:
            # nothing to compare, and a baseline would send the same requests again
            base, why = None, "no query got a sample"
        elif inputs.live and baseline:
            base = inputs.live_baseline(executor, run_dir, quiet)
        report = build_report(outcome, inputs.plan, inputs.policy, baseline=base, no_baseline=why)
    finally:
        inputs.backend.close()
    write_json(run_dir / REPORT, report)
    if not quiet:
        render_report(report)
    if unserved:
        from ttcdsl.errors import UserError

        raise UserError(
            f"no query got a sample: {unserved}",
            hint=f"fix what the reason names, then ttc run --resume {run_dir} (the run's record "
            "is kept; nothing was spent)",
        )
    return 0


def _unserved(outcome) -> str | None:
    """Why the backend served no query at all (the first query's reason), or None: a run
    whose every request failed is an error, not a result."""
    results = outcome.results
    if results and all(r.samples == 0 and r.exhausted is not None for r in results):
        return results[0].exhausted
    return None


def _nothing_stored(run_dir) -> bool:
    return _stored(run_dir) == 0


def _stored(run_dir) -> int:
    """How many sample lines ``run_dir``'s samples file holds (a torn last line not counted)."""
    from ttcdsl.runtime.rundir import SAMPLES

    try:
        with open(run_dir / SAMPLES, "rb") as handle:
            return max(0, handle.read().count(b"\n") - 1)  # less the header
    except FileNotFoundError:
        return 0


class _Inputs:
    """Every input of a run, loaded and cross-checked before anything is written."""

    def __init__(self, **kwargs) -> None:
        self.__dict__.update(kwargs)

    def manifest(self, argv):
        from ttcdsl import __version__
        from ttcdsl.runtime.rundir import Manifest
        from ttcdsl.samples.schema import now_iso

        return Manifest(
            policy_sha256=self.policy.source_hash,
            plan_sha256=self.plan_sha,
            dataset_sha256=self.dataset_sha,
            dataset_path=str(self.dataset_path),
            backend=self.backend.name,
            model=self.backend.model,
            table_sha256=self.table_sha,
            table_path=None if self.table_path is None else str(self.table_path),
            score_columns=self.score_columns,
            seed=self.seed,
            queries=len(self.dataset),
            ttc_version=__version__,
            created_at=now_iso(),
            command=("ttc", *argv[1:]),
        )

    def executor(self, store, quiet: bool, on_stored=None):
        """``on_stored()``: called after each append of samples to ``store``."""
        from ttcdsl.runtime.executor import RunSpec, print_progress
        from ttcdsl.runtime.executors import executor_for

        spec = RunSpec(
            policy=self.policy,
            plan=self.plan,
            query_ids=self.dataset.ids(),
            prompts={q.id: q.prompt or "" for q in self.dataset},
            seed=self.seed,
            prompt_bounds=self.prompt_bounds,
        )
        hook = _fault_hook(store)
        if on_stored is not None:
            fault = hook

            def hook(event, r, rows):
                if fault is not None:
                    fault(event, r, rows)
                if event == "appended":
                    on_stored()
        return executor_for(
            spec, self.backend, store, progress=None if quiet else print_progress, hook=hook
        )

    def baseline(self, spend_samples: int):
        if self.live:
            return None  # generating one is opt-in: live_baseline
        from ttcdsl.runtime.report import uniform_baseline
        from ttcdsl.runtime.replay import ReplayBackend

        return uniform_baseline(
            ReplayBackend(self.table, seed=self.seed, score_columns=self.score_columns),
            self.policy, self.dataset.ids(),
            spend_samples, self.seed,
        )

    def live_baseline(self, executor, run_dir, quiet: bool):
        """A live run's baseline (:mod:`ttcdsl.runtime.live_baseline`): the run's own samples
        where it drew them with the policy's sampling, the rest generated into its store."""
        from ttcdsl.runtime.live_baseline import baseline_pass, open_store
        from ttcdsl.runtime.rundir import SAMPLES
        from ttcdsl.samples import SampleStore

        def say(message: str) -> None:
            if not quiet:
                print(f"ttc run: {message}", file=sys.stderr, flush=True)

        store = open_store(run_dir, SampleStore.open(run_dir / SAMPLES).meta(), say=say)
        return baseline_pass(
            self.backend, self.policy, self.dataset.ids(), self.seed,
            executor.rows_drawn_with(self.policy.sampling), store, say=say,
            hook=_fault_hook(store, prefix="baseline_"),
        )


def _warn_other_batch_size(plan, policy, queries: int, dataset_path) -> None:
    """A batch-wide limit (``total ... <=``) is shared by the run's queries: a plan made for
    another batch size chose its counts for another share per query, so the run cuts queries
    short (or leaves budget unspent) and the plan's prediction does not hold. A plan for 100
    queries run on 200 spent 2.64 samples per query against its predicted 4.69, unwarned."""
    planned = plan.get("batch_size")
    totals = [limit for limit in policy.budget.limits if limit.kind == "total"]
    if not totals or not isinstance(planned, int) or planned <= 0 or planned == queries:
        return
    shown = ", ".join(f"line {limit.span.line}: total {limit.unit} <= {limit.value:g}"
                      + (f" for {limit.bin}" if limit.bin else "") for limit in totals[:3])
    print(f"ttc run: warning: the plan was made for a batch of {planned} queries and "
          f"{dataset_path} holds {queries}: its total limits ({shown}) are shared by "
          f"{queries / planned:.2g}x the queries it planned for, so the run "
          f"{'runs out and cuts queries short' if queries > planned else 'leaves budget unspent'}"
          f" and the plan's prediction does not hold; plan with --queries {queries}",
          file=sys.stderr)


def _inputs(args, *, plan_path, policy_path) -> _Inputs:
    from pathlib import Path

    from ttcdsl.datasets import read_queries
    from ttcdsl.errors import UserError
    from ttcdsl.lang.api import load_policy
    from ttcdsl.planner.plan import load_plan
    from ttcdsl.runtime.rundir import dataset_hash

    if args.backend not in BACKENDS:
        raise UserError(
            f"unknown backend {args.backend!r}", hint=f"backends: {', '.join(BACKENDS)}"
        )
    if not args.queries:
        raise UserError("ttc run needs --queries DATASET.jsonl")
    live = args.backend in LIVE_BACKENDS
    if live and args.samples:
        raise UserError(f"--samples is a replay table; the {args.backend} backend generates",
                        hint="leave out --samples")
    if live and getattr(args, "score", None):
        raise UserError("--score maps scorers to replay table columns; it needs --backend replay")
    if not live and (getattr(args, "endpoint", None) or getattr(args, "backend_option", None)):
        raise UserError("--endpoint and --backend-option are for the vllm and openai backends")
    if not live and not args.samples:
        raise UserError("--backend replay needs --samples TABLE (the logged samples to replay)")
    plan_path = Path(plan_path)
    if plan_path.is_dir():
        raise UserError(f"{plan_path}: a directory, not a plan file")
    if not plan_path.is_file():
        raise UserError(f"{plan_path}: no such plan file")
    from ttcdsl.cli.plan import _score_map

    score_flags = _score_map(getattr(args, "score", None) or [])
    if plan_path.suffix == ".ttc":
        plan, plan_bytes = _online_plan(plan_path, policy_path, score_flags)
        policy_path = str(plan_path)
    else:
        plan = load_plan(plan_path)
        plan_bytes = plan_path.read_bytes()
        from ttcdsl.planner.plan import edited_after_planning

        # said by the run only: a report read back (ttc report) says it beside the prediction
        said = not getattr(args, "partial", False)
        edited = edited_after_planning(plan)
        if said and edited:
            print(f"ttc run: warning: {plan_path} was edited after ttc plan wrote it (its "
                  "plan_sha256 no longer matches): it runs as written, but its predictions "
                  "are the planner's for the plan it made, so the report's comparison with "
                  "them says so", file=sys.stderr)
        elif said and edited is None:
            print(f"ttc run: warning: {plan_path} has no plan_sha256, so whether it was edited "
                  "after ttc plan wrote it cannot be checked: it runs as written, and the "
                  "report's comparison with its predictions says so", file=sys.stderr)
    policy_file = policy_path or _recorded_policy(plan_path, plan)
    from ttcdsl.file_kinds import require_file

    require_file(policy_file, "policy file", hint="pass --policy POLICY.ttc")
    policy = load_policy(policy_file)
    if policy.source_hash != plan["policy"]["source_sha256"]:
        raise UserError(
            f"{policy_file}: the plan was made from another version of the policy "
            f"(sha256 {policy.source_hash[:12]}..., the plan's {plan['policy']['source_sha256'][:12]}...)",
            hint="re-plan with ttc plan, or pass the policy the plan was made from with --policy",
        )
    _check_plan(plan, policy, plan_path)  # the mode first: the rest is read by mode
    from ttcdsl.planner.candidates import apply_plan_choices

    # bins with candidates run the plan's choice (checked above): what `require` checks below
    policy = apply_plan_choices(policy, plan)
    from ttcdsl.observables import score_maps
    from ttcdsl.planner.plan import plan_score_columns

    # The plan's mapping (what it was calibrated on), with --score overriding it for this table;
    # a resume reads the run's manifest, which records the mapping the run started with.
    (score_flags,) = score_maps([policy], score_flags)
    manifest_columns = getattr(args, "manifest_score_columns", None)
    if manifest_columns is not None:
        score_columns = dict(manifest_columns)
    else:
        score_columns = {**plan_score_columns(plan), **score_flags}
    dataset_path = Path(args.queries)
    if not dataset_path.is_file():
        raise UserError(f"{dataset_path}: no such dataset file")
    dataset = read_queries(dataset_path)
    if not len(dataset):
        raise UserError(f"{dataset_path}: the dataset has no queries")
    if not getattr(args, "partial", False):
        _warn_other_batch_size(plan, policy, len(dataset), dataset_path)
    common = dict(
        plan=plan,
        plan_path=plan_path,
        plan_bytes=plan_bytes,
        plan_sha=hashlib.sha256(plan_bytes).hexdigest(),
        policy=policy,
        policy_bytes=Path(policy_file).read_bytes(),
        dataset=dataset,
        dataset_path=dataset_path,
        dataset_sha=dataset_hash(dataset),
        seed=args.seed,
        score_columns=score_columns,
    )
    if live:
        from ttcdsl.cli.live import live_backend

        backend = live_backend(args, dataset, policy)
        # A policy that charges prompt tokens needs each query's bound before the first round:
        # the backend tokenizes the prompts exactly as it will send them.
        prompt_bounds = (backend.prompt_token_counts(dataset.ids())
                         if policy.budget.charge_prompt_tokens else {})
        return _Inputs(**common, table=None, table_path=None, table_sha=None, backend=backend,
                       prompt_bounds=prompt_bounds, live=True)
    table_path = Path(args.samples)
    from ttcdsl.file_kinds import require_file

    require_file(table_path, "samples table",
                 hint="a resume reads the table from where the run started; if it moved, pass "
                 "--samples NEW_PATH (its sha256 is checked)" if getattr(args, "resume", None) else None)
    from ttcdsl.runtime.replay import ReplayBackend
    from ttcdsl.samples import content_hash

    backend = ReplayBackend.from_file(table_path, seed=args.seed, score_columns=score_columns)
    from ttcdsl.errors import shown  # an id as messages quote it: a long one shortened

    absent = [q for q in dataset.ids() if backend.logged(q) == 0]
    if absent:
        examples = ", ".join(shown(q) for q in absent[:3])
        raise UserError(
            f"{len(absent)} of {len(dataset)} queries of {dataset_path} have no samples in "
            f"{table_path} (e.g. {examples})",
            hint="replay can only serve queries the table logged; run a dataset that matches it",
        )
    probe = int(policy.probe or 0)
    shallow = [q for q in dataset.ids() if backend.logged(q) < probe]
    if shallow:
        # binned on fewer samples than the plan's probe, and nothing left to serve: said before
        # the run, not only as a shortfall after it
        print(f"ttc run: warning: {len(shallow)} of {len(dataset)} queries hold fewer samples in "
              f"{table_path} than the policy's probe of {probe} (e.g. {shown(shallow[0])} holds "
              f"{backend.logged(shallow[0])}): they are binned on a shorter probe than the plan "
              "was made with, and get nothing more", file=sys.stderr)
    from ttcdsl.observables import require

    # Refuse before anything is spent when the table lacks what the policy reads (a missing
    # score column would otherwise give every query no answer, reported as accuracy 0).
    require(
        policy, backend.table, score_columns=score_columns,
        table_name=f"the replay table {table_path}", query_ids=dataset.ids(),
        warn=lambda message: print(f"ttc run: warning: {message}", file=sys.stderr),
    )
    prompt_bounds = {}
    if policy.budget.charge_prompt_tokens:
        from ttcdsl.runtime.replay import prompt_bounds as logged_prompt_bounds

        prompt_bounds = logged_prompt_bounds(backend.table)
        lacking = [q for q in dataset.ids() if q not in prompt_bounds]
        if lacking:
            raise UserError(
                f"the policy charges prompt tokens, but {len(lacking)} queries have no prompt "
                f"token counts in {table_path} (e.g. {shown(lacking[0])})",
                hint="replay a table imported with prompt token counts (ttc import --tokenizer)",
            )
    no_gold = [q.id for q in dataset.queries if q.gold is None]
    if no_gold and backend.table.correct.count() and not getattr(args, "partial", False):
        # replay serves logged samples with their logged labels; the queries file's gold is not
        # read, so a query without one is still scored (a user may expect it unlabelled)
        print(f"ttc run: note: {len(no_gold)} queries of {dataset_path} have no gold "
              f"(e.g. {shown(no_gold[0])}); replay takes each sample's correctness from {table_path}, "
              "as it was labelled there", file=sys.stderr)
    from ttcdsl.samples.gold import gold_conflicts

    conflicts, complete = gold_conflicts(backend.table, dataset.queries)
    if conflicts:
        # the accuracy a replay reports is the table's labelling: a queries file of another
        # task with the same ids ("0", "1", ...) would otherwise pass unnoticed
        query_id, what = conflicts[0]
        print(f"ttc run: warning: {'' if complete else 'at least '}{len(conflicts)} of "
              f"{len(dataset)} queries of {dataset_path} "
              f"have a gold answer that the labels in {table_path} contradict (e.g. {shown(query_id)}: "
              f"{what}); replay scores each sample by the table's label, not by the queries' "
              "gold: check that the queries file and the table are the same task (or the log's grader "
              "erred)", file=sys.stderr)
    from ttcdsl.samples.labels import label_conflict_warning

    conflict = label_conflict_warning(backend.table, str(table_path))
    if conflict:  # the replay scores the drawn sample's label; the plan's curves did not
        print(f"ttc run: warning: {conflict}", file=sys.stderr)
    table_sha = content_hash(backend.table)
    if table_sha == ((plan.get("calibration") or {}).get("content_sha256")):
        # the plan chose its bins' counts on these very samples: the run's accuracy, and its
        # margin over uniform, are measured where the plan was fitted (flattering, in-sample)
        print(f"ttc run: warning: {table_path} is the table the plan was made on: the run "
              "replays the plan's own calibration samples, so its accuracy and its verdict "
              "against uniform are in-sample and flatter it; replay held-out samples (ttc split) "
              "for a fair measure", file=sys.stderr)
    return _Inputs(
        **common,
        table=backend.table,
        table_path=table_path,
        table_sha=table_sha,
        backend=backend,
        prompt_bounds=prompt_bounds,
        live=False,
    )


def _recorded_policy(plan_path, plan) -> str:
    """The policy file the plan records, as written when it was made (relative to where ``ttc
    plan`` ran): looked for from here, then beside the plan; the one whose sha256 the plan
    records wins (a same-named file here must not shadow the plan's own)."""
    from pathlib import Path

    from ttcdsl.errors import UserError

    recorded = plan["policy"].get("file")
    if not recorded:
        raise UserError(f"{plan_path}: the plan records no policy file", hint="pass --policy POLICY.ttc")
    places = [Path(recorded)]
    if not Path(recorded).is_absolute():
        places.append(plan_path.parent / recorded)
    found = [p for p in dict.fromkeys(places) if p.is_file()]
    if not found:
        looked = [str(p) for p in dict.fromkeys(places) if str(p) != recorded]
        where = f" (nor at {' or '.join(looked)})" if looked else ""
        what = "is not a file" if Path(recorded).exists() else "is not there"
        raise UserError(f"{plan_path}: the policy file it records, {recorded}, {what}{where}",
                        hint="pass --policy POLICY.ttc")
    from ttcdsl.lang.api import load_policy

    for path in found:
        try:
            if load_policy(path).source_hash == plan["policy"]["source_sha256"]:
                return str(path)
        except UserError:
            continue
    return str(found[0])  # not the plan's version: the hash check says so


def _check_plan(plan, policy, plan_path) -> None:
    """Every plan field the run reads must agree with the policy (a hand-edited plan is refused)."""
    from ttcdsl.runtime.plancheck import check_plan_against_policy

    check_plan_against_policy(plan, policy, plan_path)


def _online_plan(policy_path, other_policy, score_columns) -> tuple[dict, bytes]:
    """The plan of a bandit policy run from its .ttc file, and the bytes the run stores."""
    from ttcdsl.errors import UserError
    from ttcdsl.lang.api import load_policy
    from ttcdsl.planner.online import online_plan
    from ttcdsl.planner.plan import dump_plan, with_digest

    if other_policy:
        raise UserError("--policy names the policy of a plan file; PLAN is already a policy here")
    from ttcdsl.observables import score_maps

    policy = load_policy(policy_path)
    (mine,) = score_maps([policy], score_columns)
    plan = with_digest(online_plan(policy, policy_file=str(policy_path), score_columns=mine))
    return plan, dump_plan(plan).encode("utf-8")


def _fault_hook(store, prefix: str = ""):
    """Crash injection for the resume tests: ``TTC_RUN_CRASH=EVENT:ROUND`` SIGKILLs this process
    at that event of that round (``append``: after writing half of the round's lines, the second
    one torn; ``appended``: right after the round's append; ``baseline_append`` and
    ``baseline_appended``: the same in a live run's baseline pass, whose generate calls are its
    rounds). Unset: no hook."""
    spec = os.environ.get("TTC_RUN_CRASH")
    if not spec or spec.startswith("create:"):  # creation steps: ttcdsl.runtime.staging
        return None
    event, _, round_text = spec.partition(":")
    target_round = int(round_text)

    def hook(name, r, rows):
        if prefix + name != event or r != target_round:
            return
        import signal

        if name == "append":
            from ttcdsl.samples.jsonl import rows_to_lines

            payload = rows_to_lines(rows).encode("utf-8")
            with open(store.path, "ab") as handle:
                cut = len(payload) // 2
                if payload[cut - 1 : cut] == b"\n":
                    cut -= 1  # end inside a line: the torn write this simulates
                handle.write(payload[:cut])
                handle.flush()
                os.fsync(handle.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

    return hook

