"""The replay backend: the conformance suite, sampling without replacement in a seeded order,
shortfalls, files, and agreement with the planner's exact curves over many seeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.runtime.conformance import CHECKS
from ttcdsl.errors import UserError
from ttcdsl.runtime import (
    Backend,
    BackendError,
    GenerationRequest,
    ReplayBackend,
    replay_order,
)
from ttcdsl.samples import FileFormatError, RunMeta, SampleRow, SamplesTable, save
from ttcdsl.workloads import builtin_workload

BIG = 1 << 20  # a max_tokens no logged sample reaches


@pytest.fixture(scope="module")
def workload() -> tuple[SamplesTable, object]:
    return builtin_workload(6, 8, seed=0)


def ask(backend: Backend, query_id: str, n: int, first: int = 0, max_tokens: int = BIG):
    [result] = backend.generate(
        [GenerationRequest(query_id=query_id, n=n, first_sample_index=first, max_tokens=max_tokens)]
    )
    return result


# ------------------------------------------------------------------------------ conformance


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_conformance(check, workload) -> None:
    table, dataset = workload
    check(lambda: ReplayBackend(table, seed=7), list(dataset), max_tokens=8192, seed=0)


# ------------------------------------------------------------------------------- the order


def test_rounds_never_serve_a_logged_sample_twice(workload) -> None:
    table, _ = workload
    backend = ReplayBackend(table, seed=3)
    for qid, sizes in (("synth-0000", (1, 3, 2, 2)), ("synth-0001", (5, 1, 1, 1))):
        served, first = [], 0
        for n in sizes:
            result = ask(backend, qid, n, first)
            assert result.shortfall == 0
            assert [s.sample_index for s in result.samples] == list(range(first, first + n))
            served += [s.source_index for s in result.samples]
            first += n
        logged = table.sample_index[table.by_query()[qid]].tolist()
        assert sorted(served) == sorted(logged) and len(served) == 8
        # Asking past the end serves nothing more (and invents nothing).
        beyond = ask(backend, qid, 2, first)
        assert beyond.samples == () and beyond.shortfall == 2


def test_the_kth_sample_does_not_depend_on_the_rounds(workload) -> None:
    table, _ = workload
    at_once = ask(ReplayBackend(table, seed=11), "synth-0002", 8).samples
    backend = ReplayBackend(table, seed=11)
    rounds = sum((ask(backend, "synth-0002", n, f).samples for f, n in ((0, 1), (1, 4), (5, 3))), ())
    assert rounds == at_once
    # ... nor on which other queries share the batch, nor on their order.
    batch = ReplayBackend(table, seed=11).generate(
        [
            GenerationRequest(query_id=q, n=8, max_tokens=BIG)
            for q in ("synth-0005", "synth-0002", "synth-0001")
        ]
    )
    assert batch[1].samples == at_once


def test_orders_differ_across_seeds_and_repeat_within_one() -> None:
    orders = {tuple(replay_order(seed, "q", range(16))) for seed in range(30)}
    assert len(orders) == 30
    assert replay_order(4, "q", range(16)) == replay_order(4, "q", range(16))
    assert replay_order(4, "q", range(16)) != replay_order(4, "r", range(16))
    # Pinned: a change here changes every replayed run (and breaks resuming old ones).
    assert replay_order(0, "q", range(8)) == [6, 1, 0, 2, 7, 5, 4, 3]


def test_adding_samples_to_a_log_keeps_the_order_of_the_old_ones() -> None:
    full = [list(range(12))[p] for p in replay_order(5, "q", range(12))]
    part = [[0, 2, 3, 7, 11][p] for p in replay_order(5, "q", [0, 2, 3, 7, 11])]
    assert [i for i in full if i in {0, 2, 3, 7, 11}] == part


def test_first_samples_are_uniform_over_the_logged_ones() -> None:
    """Over seeds, each of 6 logged samples comes first about 1/6 of the time (a chi-square test
    at the 0.1% level, on fixed seeds)."""
    seeds = 3000
    counts = np.bincount([replay_order(s, "q", range(6))[0] for s in range(seeds)], minlength=6)
    expected = seeds / 6
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 20.5, counts  # chi-square(5) 0.999 quantile


# ---------------------------------------------------------------------------- what it serves


def test_served_samples_carry_the_logged_values(workload) -> None:
    table, _ = workload
    logged = {(r.query_id, r.sample_index): r for r in table.rows()}
    result = ask(ReplayBackend(table, seed=2), "synth-0003", 8)
    assert [s.sample_index for s in result.samples] == list(range(8))
    assert [s.source_index for s in result.samples] != list(range(8))  # positions, not log indices
    for s in result.samples:
        row = logged[("synth-0003", s.source_index)]
        assert (s.answer, s.correct, s.text, s.seed) == (row.answer, row.correct, row.text, row.seed)
        assert (s.prompt_tokens, s.completion_tokens, s.finish_reason) == (
            row.prompt_tokens, row.completion_tokens, row.finish_reason
        )
        assert s.mean_logprob == row.mean_logprob and dict(s.scores) == dict(row.scores)


def test_shortfall_is_reported_with_its_reason(workload) -> None:
    table, _ = workload
    backend = ReplayBackend(table, seed=0)
    partial = ask(backend, "synth-0004", 4, first=6)
    assert [s.sample_index for s in partial.samples] == [6, 7]
    assert partial.shortfall == 2
    assert partial.reason == "query 'synth-0004': 8 samples logged, 10 requested"
    unknown = ask(backend, "nope", 3)
    assert unknown.samples == () and unknown.shortfall == 3
    assert "nope" in unknown.reason and "not in" in unknown.reason
    assert (backend.logged("synth-0004"), backend.logged("nope")) == (8, 0)


def test_a_budget_below_a_logged_length_cuts_the_sample(workload) -> None:
    table, _ = workload
    full = ask(ReplayBackend(table, seed=1), "synth-0000", 8).samples
    budget = int(np.median([s.completion_tokens for s in full]))
    cut = ask(ReplayBackend(table, seed=1), "synth-0000", 8, max_tokens=budget).samples
    long = [s.completion_tokens > budget for s in full]
    assert any(long) and not all(long)  # the workload has both kinds at this budget
    for whole, served, is_long in zip(full, cut, long, strict=True):
        assert served.source_index == whole.source_index
        if is_long:
            assert (served.completion_tokens, served.finish_reason) == (budget, "length")
            assert (served.answer, served.text, served.mean_logprob) == (None, None, None)
            assert served.correct is False and not served.scores
        else:
            assert served == whole


def _small_table(**fields) -> SamplesTable:
    rows = [SampleRow(query_id=q, sample_index=i, answer=str(i % 2), **fields)
            for q in ("a", "b") for i in range(3)]
    return SamplesTable.from_rows(rows, meta=RunMeta(model="m-1"))


def test_capabilities_follow_the_table() -> None:
    bare = ReplayBackend(_small_table(), seed=0)
    caps = bare.capabilities
    assert (caps.labelled, caps.logprobs, caps.prompt_tokens) == (False, False, False)
    assert caps.deterministic and caps.answers and caps.max_batch is None
    rich = ReplayBackend(_small_table(correct=True, mean_logprob=-0.5, prompt_tokens=4), seed=0)
    caps = rich.capabilities
    assert (caps.labelled, caps.logprobs, caps.prompt_tokens) == (True, True, True)
    assert (rich.name, rich.model) == ("replay", "m-1")
    assert ReplayBackend(_small_table(), seed=0, name="replay-b").name == "replay-b"


def test_closed_backend_refuses_to_generate(workload) -> None:
    backend = ReplayBackend(workload[0], seed=0)
    backend.close()
    with pytest.raises(BackendError, match="closed"):
        ask(backend, "synth-0000", 1)


# ------------------------------------------------------------------------------------ files


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_from_file_replays_the_same_samples(workload, tmp_path: Path, suffix: str) -> None:
    table, _ = workload
    path = tmp_path / f"log{suffix}"
    save(table, path)
    from_file = ReplayBackend.from_file(path, seed=9)
    assert ask(from_file, "synth-0001", 8) == ask(ReplayBackend(table, seed=9), "synth-0001", 8)


def test_from_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="missing.jsonl"):
        ReplayBackend.from_file(tmp_path / "missing.jsonl", seed=0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("this is not json\n")
    with pytest.raises(FileFormatError, match="bad.jsonl"):
        ReplayBackend.from_file(bad, seed=0)
    with pytest.raises(UserError, match="extension"):
        ReplayBackend.from_file(tmp_path / "log.csv", seed=0)
    empty = tmp_path / "empty.jsonl"
    save(SamplesTable.from_rows([], meta=RunMeta()), empty)
    with pytest.raises(BackendError, match="no samples"):
        ReplayBackend.from_file(empty, seed=0)


# ----------------------------------------------------------------- agreement with the curves


def vote_prefixes(answers: Sequence[str | None], labels: dict[str | None, bool]) -> np.ndarray:
    """``[n]`` majority-vote correctness after the first 1..n answers: samples without an answer
    do not vote, ties go to the answer that appeared first, no vote at all is wrong."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    leader: str | None = None
    out = np.zeros(len(answers), dtype=bool)
    for k, answer in enumerate(answers):
        if answer is not None:
            counts[answer] = counts.get(answer, 0) + 1
            first.setdefault(answer, k)
            if leader is None or (counts[answer], -first[answer]) > (
                counts[leader], -first[leader]
            ):
                leader = answer
        out[k] = leader is not None and labels.get(leader, False)
    return out


def test_vote_prefixes_by_hand() -> None:
    labels = {"x": True, "y": False}
    assert vote_prefixes([None, "y", "x", "x"], labels).tolist() == [False, False, False, True]
    # y first at 0, x overtakes at 2, y ties at 3 and wins the tie by appearing first.
    assert vote_prefixes(["y", "x", "x", "y"], labels).tolist() == [False, False, True, False]
    assert vote_prefixes(["x", "y"], labels).tolist() == [True, True]


def replay_statistics(table: SamplesTable, n: int, seeds: range) -> tuple[np.ndarray, np.ndarray]:
    """``[seeds, n]`` bin means of majority-vote accuracy and coverage of the first 1..n samples
    served per query, one row per replay seed."""
    qids = table.query_ids()
    labels: dict[str, dict[str | None, bool]] = {q: {} for q in qids}
    for q, a, ok in zip(table.query_id, table.answer, table.correct.filled(False), strict=True):
        if a is not None:
            labels[q][a] = labels[q].get(a, False) or bool(ok)
    requests = [GenerationRequest(query_id=q, n=n, max_tokens=BIG) for q in qids]
    accuracy = np.zeros((len(seeds), n))
    coverage = np.zeros((len(seeds), n))
    for row, seed in enumerate(seeds):
        for result in ReplayBackend(table, seed=seed).generate(requests):
            assert result.shortfall == 0
            samples = result.samples
            accuracy[row] += vote_prefixes([s.answer for s in samples], labels[result.query_id])
            coverage[row] += np.logical_or.accumulate([bool(s.correct) for s in samples])
    return accuracy / len(qids), coverage / len(qids)


def exact_curves(table: SamplesTable, n: int) -> tuple[np.ndarray, np.ndarray]:
    from ttcdsl.curves import Method, QueryPool, response_curve

    pool = QueryPool.from_table(table)
    vote = response_curve(pool, "majority_vote", n)
    cover = response_curve(pool, "pass_at_k", n)
    assert (vote.method == Method.EXACT).all() and (cover.method == Method.EXACT).all()
    return vote.mean_accuracy, cover.mean_accuracy


def assert_agree(name: str, replayed: np.ndarray, exact: np.ndarray, sigmas: float = 4.0) -> None:
    """Per level, the mean over seeds is within ``sigmas`` standard errors of the exact value."""
    mean = replayed.mean(0)
    stderr = replayed.std(0, ddof=1) / np.sqrt(len(replayed))
    tolerance = sigmas * stderr + 1e-12
    bad = np.flatnonzero(np.abs(mean - exact) > tolerance)
    assert not bad.size, (
        f"{name}: replay {mean[bad]} vs exact {exact[bad]} (stderr {stderr[bad]}) at n={bad + 1}"
    )


def test_replay_matches_the_exact_curves_on_the_builtin_workload() -> None:
    table, _ = builtin_workload(100, 12, seed=0)
    accuracy, coverage = replay_statistics(table, 12, range(150))
    exact_accuracy, exact_coverage = exact_curves(table, 12)
    assert_agree("majority vote", accuracy, exact_accuracy)
    assert_agree("coverage", coverage, exact_coverage)
    # The check has teeth: single-sample accuracy is far from majority-of-12 on this workload.
    assert exact_accuracy[-1] - exact_accuracy[0] > 0.05
    # All 12 samples: coverage no longer depends on the order.
    assert np.ptp(coverage[:, -1]) == 0 and coverage[0, -1] == pytest.approx(exact_coverage[-1])


def test_replay_matches_the_exact_curves_on_cruxeval_output(shared_data: Path) -> None:
    from ttcdsl.importers import ImportOptions, import_cruxeval_scored

    table = import_cruxeval_scored(
        shared_data / "pools" / "cruxeval_output_codellama7b_x10.json", ImportOptions()
    )
    accuracy, coverage = replay_statistics(table, 4, range(40))
    exact_accuracy, exact_coverage = exact_curves(table, 4)
    assert_agree("majority vote", accuracy, exact_accuracy)
    assert_agree("coverage", coverage, exact_coverage)
    # The README's figures: coverage 0.372 at 2 samples, 0.396 at 4.
    assert abs(coverage[:, 1].mean() - 0.372) < 0.003
    assert abs(coverage[:, 3].mean() - 0.396) < 0.003
