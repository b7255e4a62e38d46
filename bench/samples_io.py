"""Benchmark: loading a samples table from JSONL and Parquet vs a plain ``json.loads`` loop.

    python bench/samples_io.py                     # 10^6 rows, 3 repeats
    python bench/samples_io.py --rows 200000 --out out/samples_io.json

Builds a synthetic table (8 samples per query, token counts, answers, correctness, one scorer,
no texts unless ``--text-chars`` is given), writes it with ``ttcdsl.samples.save`` as JSONL and as
Parquet in a temporary directory, then measures, in the same run and on the same file, the best of
``--repeat`` wall-clock times of:

* ``ttcdsl.samples.load(table.jsonl)``   — validated columnar table from the JSONL store
* ``ttcdsl.samples.load(table.parquet)`` — the same from Parquet
* baseline: ``[json.loads(line) for line in file]`` over the JSONL rows (dicts only, no checks)

It prints rows/s and the ratios to the baseline, and writes every number to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ttcdsl.samples import RunMeta, SamplesTable, load, save  # noqa: E402


def synthetic_table(rows: int, *, text_chars: int, seed: int = 0) -> SamplesTable:
    rng = np.random.default_rng(seed)
    per_query = 8
    queries = -(-rows // per_query)
    qid = np.array([f"q{i:07d}" for i in range(queries)], dtype=object).repeat(per_query)[:rows]
    sample_index = np.tile(np.arange(per_query, dtype=np.int64), queries)[:rows]
    completion = rng.integers(20, 4096, rows)
    finish = np.where(completion > 4000, "length", "stop").astype(object)
    answers = rng.integers(0, 50, rows).astype(str).astype(object)
    missing = rng.random(rows) < 0.05
    answers[missing] = None
    text = None
    if text_chars:
        text = np.array(["x" * text_chars] * rows, dtype=object)
    return SamplesTable.from_columns(
        meta=RunMeta(model="synthetic", backend="bench", seed=seed, sampling={"temperature": 0.7}),
        query_id=qid,
        sample_index=sample_index,
        round=sample_index // 4,
        prompt_tokens=np.ma.MaskedArray(rng.integers(30, 400, rows)),
        completion_tokens=np.ma.MaskedArray(completion),
        finish_reason=finish,
        text=text,
        answer=answers,
        correct=np.ma.MaskedArray(rng.random(rows) < 0.6),
        mean_logprob=np.ma.MaskedArray(-rng.random(rows)),
        scores={"rm": np.ma.MaskedArray(rng.normal(size=rows))},
        temperature=np.ma.MaskedArray(np.full(rows, 0.7)),
        seed=np.ma.MaskedArray(rng.integers(0, 2**31, rows)),
    )


def best_of(repeat: int, func) -> float:  # noqa: ANN001 - any zero-argument callable
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def json_loads_loop(path: Path) -> int:
    count = 0
    with open(path, encoding="utf-8") as handle:
        handle.readline()  # the header
        for line in handle:
            json.loads(line)
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--text-chars", type=int, default=0, help="length of each sample's text")
    parser.add_argument("--out", type=Path, default=Path("out/samples_io.json"))
    args = parser.parse_args(argv)

    start = time.perf_counter()
    table = synthetic_table(args.rows, text_chars=args.text_chars)
    build_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="ttc-bench-") as tmp:
        jsonl, parquet = Path(tmp) / "table.jsonl", Path(tmp) / "table.parquet"
        start = time.perf_counter()
        save(table, jsonl)
        write_jsonl_s = time.perf_counter() - start
        start = time.perf_counter()
        save(table, parquet)
        write_parquet_s = time.perf_counter() - start

        assert load(jsonl) == table and load(parquet) == table, "round trip changed the table"
        assert json_loads_loop(jsonl) == args.rows

        baseline = best_of(args.repeat, lambda: json_loads_loop(jsonl))
        from_jsonl = best_of(args.repeat, lambda: load(jsonl))
        from_parquet = best_of(args.repeat, lambda: load(parquet))
        sizes = {"jsonl_bytes": jsonl.stat().st_size, "parquet_bytes": parquet.stat().st_size}

    rate = lambda seconds: args.rows / seconds  # noqa: E731
    result = {
        "rows": args.rows,
        "repeat": args.repeat,
        "text_chars": args.text_chars,
        "seconds": {
            "json_loads_loop": baseline,
            "load_jsonl": from_jsonl,
            "load_parquet": from_parquet,
            "build_table": build_s,
            "save_jsonl": write_jsonl_s,
            "save_parquet": write_parquet_s,
        },
        "rows_per_s": {
            "json_loads_loop": rate(baseline),
            "load_jsonl": rate(from_jsonl),
            "load_parquet": rate(from_parquet),
        },
        "speedup_vs_json_loads": {
            "load_jsonl": baseline / from_jsonl,
            "load_parquet": baseline / from_parquet,
        },
        **sizes,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    print(f"{args.rows:,} rows, best of {args.repeat}")
    print(f"  json.loads loop (baseline) {rate(baseline):>12,.0f} rows/s  {baseline:7.3f} s")
    for key, label in (("load_jsonl", "load .jsonl"), ("load_parquet", "load .parquet")):
        seconds = result["seconds"][key]
        ratio = result["speedup_vs_json_loads"][key]
        print(
            f"  {label:<26} {rate(seconds):>12,.0f} rows/s  {seconds:7.3f} s  x{ratio:.2f} baseline"
        )
    print(
        f"  files: jsonl {sizes['jsonl_bytes'] / 1e6:.1f} MB, parquet {sizes['parquet_bytes'] / 1e6:.1f} MB"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"  numbers written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
