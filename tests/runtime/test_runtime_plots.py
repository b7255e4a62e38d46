"""PNG plots of a run report: `write_run_plots` on a real replay run's report.json, the plots it
skips when data is missing, atomic writes, and `ttc report RUN_DIR --plots DIR`."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from tests.paths import REPO
from tests.runtime.runs import hand_plan, run_args, ttc, workload_files, write_policy
from ttcdsl.runtime import plots
from ttcdsl.runtime.plots import BINS, HISTOGRAM, VS_UNIFORM, write_run_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_width=300, min_height=200):
    """A complete PNG of a sane size (read back by matplotlib)."""
    from matplotlib.image import imread

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert data.rstrip()[-8:-4] == b"IEND", f"{path}: truncated"
    height, width = imread(path).shape[:2]
    assert min_width <= width <= 4000 and min_height <= height <= 4000, (width, height)
    return width, height


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("plots")
    policy = write_policy(d)
    plan = hand_plan(policy)
    samples, queries = workload_files(d, n=30, m=16)
    out = d / "run"
    assert ttc(*run_args(plan, queries, samples, out, seed=3)) == 0
    return out


@pytest.fixture
def report(run_dir):
    return json.loads((run_dir / "report.json").read_text())


def test_the_three_plots_of_a_replay_run(report, tmp_path):
    assert report["accuracy"] is not None and report["baseline"] is not None  # the premise
    target = tmp_path / "new" / "plots"  # created, parents too
    skipped = []
    written = write_run_plots(report, target, skipped=skipped)
    assert written == [target / HISTOGRAM, target / BINS, target / VS_UNIFORM]
    assert skipped == []
    for path in written:
        assert_png(path)
    # atomic writes leave no temporary file behind
    assert sorted(p.name for p in target.iterdir()) == sorted([HISTOGRAM, BINS, VS_UNIFORM])


def test_the_report_carries_the_plans_bin_error(report):
    # the bins plot draws the plan's error bar from here (the hand plan gives none)
    assert all("predicted_accuracy_se" in b for b in report["bins"])
    assert report["plots"].startswith("PNG plots: ttc report")


def unlabelled(report):
    r = copy.deepcopy(report)
    r["accuracy"] = r["accuracy_se"] = r["coverage"] = None
    r["labelled"] = 0
    for b in r["bins"]:
        b["accuracy"] = b["accuracy_se"] = None
    r["baseline"]["accuracy"] = r["baseline"]["accuracy_se"] = None
    return r


def test_no_gold_labels_no_accuracy(report, tmp_path):
    labelled = tmp_path / "labelled"
    write_run_plots(report, labelled)
    skipped = []
    written = write_run_plots(unlabelled(report), tmp_path / "unlabelled", skipped=skipped)
    assert [p.name for p in written] == [HISTOGRAM, BINS]
    assert any(VS_UNIFORM in note and "gold labels" in note for note in skipped)
    assert any(BINS in note and "accuracy panel" in note for note in skipped)
    # the bins plot lost its accuracy panel: one panel, a narrower image
    full_width, _ = assert_png(labelled / BINS)
    one_width, _ = assert_png(written[1])
    assert one_width < 0.7 * full_width


def test_no_baseline_no_comparison(report, tmp_path):
    r = dict(report, baseline=None)
    skipped = []
    written = write_run_plots(r, tmp_path, skipped=skipped)
    assert [p.name for p in written] == [HISTOGRAM, BINS]
    assert skipped == [f"{VS_UNIFORM}: skipped, the report has no uniform baseline"]


def test_no_queries_no_plots_and_no_stale_ones(report, tmp_path):
    write_run_plots(report, tmp_path)
    assert len(list(tmp_path.glob("*.png"))) == 3
    empty = dict(report, queries=0, histogram={}, baseline=None)
    empty["bins"] = [dict(b, queries=0, mean_samples=None, accuracy=None) for b in report["bins"]]
    skipped = []
    assert write_run_plots(empty, tmp_path, skipped=skipped) == []
    assert len(skipped) == 3
    # the earlier report's plots are gone: they would pass for this report's
    assert list(tmp_path.glob("*.png")) == []


def test_titles_name_the_policy(report, monkeypatch, tmp_path):
    figures = []
    real = plots.new_figure
    monkeypatch.setattr(plots, "new_figure", lambda *a: figures.append(real(*a)) or figures[-1])
    write_run_plots(report, tmp_path)
    assert len(figures) == 3
    for figure in figures:
        titles = [ax.get_title() for ax in figure.axes]
        titles.append(figure.get_suptitle())
        assert any("small_adaptive" in t for t in titles), titles
    # the comparison bars: the run's accuracy and the baseline's, each with its error
    (ax,) = figures[2].axes
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx([report["accuracy"], report["baseline"]["accuracy"]])


def test_a_failed_write_leaves_nothing(report, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        write_run_plots(report, tmp_path)
    assert list(tmp_path.iterdir()) == []  # no partial PNG, no temporary file


def test_plots_directory_that_is_a_file_is_a_user_error(report, tmp_path):
    from ttcdsl.errors import UserError

    file = tmp_path / "f"
    file.write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        write_run_plots(report, file)


def test_ttc_report_plots(run_dir, tmp_path, capsys):
    out = tmp_path / "p"
    assert ttc("report", str(run_dir), "--plots", str(out)) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-3:] == [str(out / HISTOGRAM), str(out / BINS), str(out / VS_UNIFORM)]
    assert not any("--plots DIR" in line for line in printed)  # no hint at what it is doing
    for name in (HISTOGRAM, BINS, VS_UNIFORM):
        assert_png(out / name)
    # with --json standard output stays JSON; the paths go to standard error
    assert ttc("report", str(run_dir), "--json", "--plots", str(tmp_path / "q")) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["policy"] == "small_adaptive"
    assert str(tmp_path / "q" / BINS) in captured.err
    # no --plots, no plots, and the report says how to get them
    assert ttc("report", str(run_dir)) == 0
    assert not any(run_dir.rglob("*.png"))
    assert "note: PNG plots: ttc report RUN_DIR --plots DIR" in capsys.readouterr().out


def test_ttc_report_plots_into_a_file_is_a_clean_user_error(run_dir, tmp_path, capsys):
    file = tmp_path / "taken"
    file.write_text("x")
    assert ttc("report", str(run_dir), "--plots", str(file)) == 1
    captured = capsys.readouterr()
    assert "not a directory" in captured.err and "Traceback" not in captured.err
    assert file.read_text() == "x"
    # said before the report: it was printed whole, then refused
    assert captured.out == ""


def test_matplotlib_is_imported_lazily():
    code = (
        "import sys, ttcdsl.cli, ttcdsl.runtime.plots, ttcdsl.runtime.report\n"
        "ttcdsl.cli.build_parser()\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.returncode == 0, done.stderr
