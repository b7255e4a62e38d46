"""`ttc report RUN_DIR`: print a finished run's report (``RUN_DIR/report.json``) as tables.

    ttc report runs/r1                    # rich tables on the terminal
    ttc report runs/r1 --json             # the report as JSON
    ttc report runs/r1 --plots runs/r1/plots   # also PNG plots there (matplotlib)

``--plots DIR`` writes ``samples_histogram.png``, ``bins.png`` and ``policy_vs_uniform.png`` into
DIR (created if missing; see :mod:`ttcdsl.runtime.plots`), skipping, with a note on standard error,
a plot whose data the report lacks (no gold labels: no accuracy; no uniform baseline), and prints
the paths written (on standard error with ``--json``, so standard output stays JSON).

A run that has not finished (killed, or still running) has no ``report.json``: its report is
rebuilt from the samples stored so far (:func:`ttcdsl.cli.run.partial_report`: nothing generated,
the run directory untouched, no uniform baseline) and marked PARTIAL. ``ttc run --resume RUN_DIR``
finishes the run and writes the final report. A run that a process is writing now is said to be
(with its pid). A ``report.json`` that its ``samples.jsonl`` contradicts (another number of
samples, or a sample stored twice) is refused (:mod:`ttcdsl.runtime.audit`).
"""

from __future__ import annotations

import argparse
import contextlib


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="print the report of a run directory",
        description="Accuracy, spend per bin, stop-rule savings, budget and the uniform baseline "
        "of a run; an unfinished run gets a partial report from the samples stored so far.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (ttc run --out)")
    parser.add_argument("--json", action="store_true", help="print report.json instead of tables")
    parser.add_argument(
        "--plots", metavar="DIR",
        help="also write PNG plots (samples histogram, bins, run vs uniform) into DIR",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import io
    import json
    import sys
    from pathlib import Path

    from ttcdsl.errors import UserError
    from ttcdsl.runtime.report import render_report
    from ttcdsl.runtime.audit import check_report_against_samples, check_run_files
    from ttcdsl.runtime.lock import writer_pid
    from ttcdsl.runtime.rundir import REPORT, SAMPLES, read_manifest

    if args.plots is not None and not args.plots.strip():
        # an empty --plots was taken as "no plots", without a word
        from ttcdsl.cli.usage import usage_error

        usage_error(args, "--plots needs a directory name", hint="e.g. --plots RUN_DIR/plots")
    run_dir = Path(args.run_dir)
    read_manifest(run_dir)  # a clear error when it is not a run directory
    writer = writer_pid(run_dir)
    if writer is not None:
        print(f"ttc report: {run_dir} is being written by pid {writer} (a ttc run); what it "
              "shows may change", file=sys.stderr)
    path = run_dir / REPORT
    if path.is_file():
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise UserError(f"{path}: cannot read the report: {error}") from None
        with _malformed(path, report):
            if not isinstance(report, dict):
                raise TypeError(f"a JSON {type(report).__name__}, not an object")
            check_report_against_samples(path, report, run_dir / SAMPLES)
            check_run_files(run_dir)
            from ttcdsl.runtime.audit import check_results_file
            from ttcdsl.runtime.rundir import RESULTS

            # the report against the samples first: an edited report is then named as such, not
            # taken for results that do not add up to it
            _check_figures(run_dir, path, report)
            check_results_file(run_dir / RESULTS, report)
            # drawn once where nobody sees it: a field of the wrong shape fails here, before a
            # half-printed table
            render_report(report, file=io.StringIO(), plots_note=False)
    else:
        from ttcdsl.cli.run import partial_report

        report = partial_report(run_dir)
        print(f"ttc report: {run_dir} has not finished: a PARTIAL report "
              f"{report['partial']['how']}", file=sys.stderr)
    if args.plots:
        from ttcdsl.plotting import require_matplotlib

        require_matplotlib()  # before printing anything
        from ttcdsl.runtime.plots import plot_directory

        plot_directory(args.plots)  # an --plots that cannot hold them: said before the report
    if args.json:
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
    else:
        render_report(report, plots_note=not args.plots)
    if args.plots:
        from ttcdsl.runtime.plots import write_run_plots

        skipped: list[str] = []
        try:
            written = write_run_plots(report, Path(args.plots), skipped=skipped)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise UserError(f"{path}: cannot plot the report: {type(error).__name__}: {error}") \
                from None
        out = sys.stderr if args.json else sys.stdout
        for note in skipped:
            print(f"plots: {note}", file=sys.stderr)
        for plot in written:
            print(plot, file=out)
    return 0


@contextlib.contextmanager
def _malformed(path, report):
    """A report.json whose fields have the wrong shape (null where a table is, a number where a
    name is) is a user's damaged file, not a crash: exit 1 naming it, and the field it is damaged
    in where that can be told."""
    from ttcdsl.errors import UserError

    try:
        yield
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001  (any shape of damage; the message names it)
        field, sure = _damaged_field(report)
        if field is not None and not sure and type(report[field]).__name__ not in str(error):
            field = None  # the last field read is not of the type Python's error names
        if field is None:
            what = f"{type(error).__name__}: {error}"
        elif sure:
            what = f"its field {field!r} holds {_json_kind(report[field])}, which a run does not write there"
        else:
            what = (f"while reading its field {field!r}, which holds {_json_kind(report[field])}: "
                    f"{type(error).__name__}: {error}")
        raise UserError(f"{path}: a damaged run report ({what})",
                        hint="run again into a new --out; a report is written only by a run") from None


class _ReadLog(dict):
    """A report that remembers the last top-level field read from it."""

    last: str | None = None

    def __getitem__(self, key):
        self.last = key
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.last = key
        return super().get(key, default)


# what a field is put back as, to see whether the report renders without its damage
_NEUTRAL = (None, {}, [], "", 0)


def _damaged_field(report) -> tuple[str | None, bool]:
    """(field, sure): the top-level field the report's rendering fails in. Sure when the report
    renders once that field alone is taken out or emptied; else the last field rendering read
    before it failed (None when rendering is not what fails)."""
    import io

    from ttcdsl.runtime.report import render_report

    def renders(candidate) -> bool:
        try:
            render_report(candidate, file=io.StringIO(), plots_note=False)
        except Exception:  # noqa: BLE001  (any failure is a shape the renderer cannot take)
            return False
        return True

    if not isinstance(report, dict):
        return None, False
    logged = _ReadLog(report)
    if renders(logged):
        return None, False
    for field in report:
        rest = {k: v for k, v in report.items() if k != field}
        if renders(rest) or any(renders({**rest, field: value}) for value in _NEUTRAL
                                if value != report[field] or type(value) is not type(report[field])):
            return field, True
    return logged.last, False


def _json_kind(value) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string",
             list: "a list", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _check_figures(run_dir, path, report: dict) -> None:
    """The report's accuracy, coverage and query count against the stored samples replayed
    through the run's rules again (:func:`ttcdsl.runtime.audit.check_report_figures`). That
    needs the run's dataset and replay table where it ran from; without them it is said, not
    guessed. A live run is checked by its samples' count only: replaying its rules may need its
    model's tokenizer (prompt bounds), which would start an engine to show a report."""
    import sys

    from ttcdsl.cli.run import LIVE_BACKENDS, partial_report
    from ttcdsl.errors import UserError
    from ttcdsl.runtime.audit import check_report_figures
    from ttcdsl.runtime.rundir import read_manifest

    if read_manifest(run_dir).backend in LIVE_BACKENDS:
        return
    try:
        recomputed = partial_report(run_dir)
    except UserError as error:
        print(f"ttc report: not checked against the stored samples ({error.message})", file=sys.stderr)
        return
    check_report_figures(path, report, recomputed)

