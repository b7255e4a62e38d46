"""Benchmark: what the live backends cost over the engine they drive.

    python bench/backends.py --model DIR                      # the vllm part only
    python bench/backends.py --model DIR --server URL         # and the openai part
    python bench/backends.py --model DIR --quick --json out/backends.json

Both parts generate the same requests: the built-in arithmetic questions (``--count``), each
``--samples`` seeded samples of at most ``--max-tokens`` tokens at temperature 0.8.

* vllm: the runtime's executor (``ttc run``'s path: a uniform plan, the vllm backend, a samples
  store written and fsynced, answers extracted and labelled) against ONE plain ``LLM.generate``
  call with the same prompt token ids and ``SamplingParams`` (same seeds, so the same tokens),
  on the same engine, loaded once beforehand (engine load is not what is compared). Overhead =
  executor wall time / plain wall time - 1 (the issue's bar: <= 5%).
* openai: the openai backend against the same request bodies sent directly with ``httpx``
  (asyncio, the same concurrency limit) to the same server (the bar: <= 10%).

Each side runs ``--repeats`` times, alternating, after one warm-up of each; the table shows the
medians (tokens/s = completion tokens / wall seconds). The engine and the server are the caller's:
on CPU use vLLM's CPU build settings (README); numbers are only comparable within one run.

Measured on 2 shared CPU cores (load average ~4; vLLM's CPU build, SmolLM2-135M-Instruct fp32, one
server pinned to the other core), 2026-12-01:

* ``--count 8 --samples 4 --max-tokens 16 --repeats 3 --server URL`` (417 tokens a side):
  vllm 193.5 tok/s plain, 183.5 through the executor: +5.5%; openai 83.4 tok/s direct, 78.0
  through the backend: +6.9%.
* ``--count 16 --samples 4 --max-tokens 32 --repeats 3`` (1,400 tokens a side): vllm 255.1 tok/s
  plain, 246.5 through the executor: +3.5%. The executor's cost per sample is fixed (answer
  extraction and labelling, the fsynced store), so it shrinks as generations grow.

No GPU figures: no device was lent to this task.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _policy_text(samples: int, max_tokens: int) -> str:
    return f"""policy bench_uniform "{samples} samples per query"
budget {{
  mean samples per query <= {samples}
  samples per query in 1..{samples}
}}
sampling {{ temperature 0.8  max_tokens {max_tokens} }}
allocate bandit {{
  round {samples} samples
  explore all
  solved when top_share >= 1 after {samples}
}} maximize accuracy
answer majority_vote
"""


def _setup(args, directory: Path):
    from ttcdsl.datasets.arithmetic import arithmetic_questions
    from ttcdsl.lang.api import load_policy
    from ttcdsl.planner.online import online_plan

    dataset = arithmetic_questions(args.count, 0)
    policy_path = directory / "bench.ttc"
    policy_path.write_text(_policy_text(args.samples, args.max_tokens))
    policy = load_policy(policy_path)
    return dataset, policy, online_plan(policy, policy_file=str(policy_path))


def _requests(dataset, args, seed: int):
    from ttcdsl.runtime import GenerationRequest

    return [GenerationRequest(query_id=q.id, n=args.samples, max_tokens=args.max_tokens,
                              temperature=0.8, seed=seed) for q in dataset]


def bench_vllm(args, directory: Path) -> dict:
    from ttcdsl.runtime.executor import RunSpec, executor_for
    from ttcdsl.runtime.live import LiveQueries, parse_options
    from ttcdsl.runtime.vllm_backend import OPTIONS, VllmBackend
    from ttcdsl.samples import RunMeta, SampleStore

    dataset, policy, plan = _setup(args, directory)
    options = parse_options([f"model={args.model}", *args.option], OPTIONS, "vllm")
    owner = VllmBackend(options, LiveQueries(dataset))
    llm = owner._engine()
    backend = VllmBackend(options, LiveQueries(dataset), engine=llm)
    backend.queries.answer_and_label(dataset.queries[0].id, "1")  # start the math verifier

    def plain(seed: int) -> tuple[float, int]:
        # The backend's own mapping of requests to prompts and params: the same work, minus ttc.
        prompts, params = [], []
        for request in _requests(dataset, args, seed):
            ids = backend._prompt(request.query_id)
            for s in request.seeds:
                prompts.append({"prompt_token_ids": ids})
                params.append(backend._params(request, s))
        started = time.perf_counter()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        wall = time.perf_counter() - started
        return wall, sum(len(o.outputs[0].token_ids) for o in outputs)

    def through_ttc(seed: int, k: int) -> tuple[float, int]:
        spec = RunSpec(policy=policy, plan=plan, query_ids=dataset.ids(),
                       prompts={q.id: q.prompt for q in dataset}, seed=seed)
        store = SampleStore.create(directory / f"samples-{seed}-{k}.jsonl",
                                   RunMeta(backend="vllm", model=backend.model, seed=seed))
        started = time.perf_counter()
        executor_for(spec, backend, store).run()
        wall = time.perf_counter() - started
        return wall, int(sum(store.load().completion_tokens))

    return _compare("vllm", plain, through_ttc, args)


def bench_openai(args, directory: Path) -> dict:
    import httpx

    from ttcdsl.runtime.live import LiveQueries, parse_options
    from ttcdsl.runtime.openai_backend import OPTIONS, OpenAIBackend

    dataset, _, _ = _setup(args, directory)
    options = parse_options([f"concurrency={args.concurrency}"], OPTIONS, "openai")
    backend = OpenAIBackend([args.server], options, LiveQueries(dataset))
    model = backend.model
    url = backend.urls[0] + "/chat/completions"

    async def direct_round(bodies) -> int:
        limit = asyncio.Semaphore(args.concurrency)
        async with httpx.AsyncClient(timeout=300) as client:
            async def one(body):
                async with limit:
                    response = await client.post(url, json=body)
                response.raise_for_status()
                return response.json()["usage"]["completion_tokens"]
            return sum(await asyncio.gather(*(one(b) for b in bodies)))

    def plain(seed: int) -> tuple[float, int]:
        bodies = [backend._body(r, model, s) for r in _requests(dataset, args, seed)
                  for s in r.seeds]
        started = time.perf_counter()
        tokens = asyncio.run(direct_round(bodies))
        return time.perf_counter() - started, tokens

    def through_ttc(seed: int, k: int) -> tuple[float, int]:
        started = time.perf_counter()
        results = backend.generate(_requests(dataset, args, seed))
        wall = time.perf_counter() - started
        return wall, sum(s.completion_tokens for r in results for s in r.samples)

    return _compare("openai", plain, through_ttc, args)


def _compare(name: str, plain, through_ttc, args) -> dict:
    plain(10_000)  # warm-up of each side (other seeds than the measured ones)
    through_ttc(10_001, -1)
    walls: dict[str, list[float]] = {"plain": [], "ttc": []}
    tokens: dict[str, list[int]] = {"plain": [], "ttc": []}
    for k in range(args.repeats):
        for side, fn in (("plain", lambda: plain(k)), ("ttc", lambda: through_ttc(k, k))):
            wall, count = fn()
            walls[side].append(wall)
            tokens[side].append(count)
    if tokens["plain"] != tokens["ttc"]:
        raise SystemExit(f"{name}: the two sides generated different token counts "
                         f"{tokens['plain']} vs {tokens['ttc']}: not the same requests")
    row = {"backend": name, "repeats": args.repeats, "tokens_per_repeat": tokens["plain"][0]}
    for side in walls:
        wall = statistics.median(walls[side])
        row[f"{side}_wall_s"] = round(wall, 3)
        row[f"{side}_tokens_per_s"] = round(tokens[side][0] / wall, 1)
    row["overhead"] = round(row["ttc_wall_s"] / row["plain_wall_s"] - 1, 4)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the model folder (ttc model prepare)")
    parser.add_argument("--server", help="an OpenAI-compatible server serving the same model")
    parser.add_argument("--option", action="append", default=[], help="vllm --backend-option")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="8 questions x 2 samples, 2 repeats")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.samples, args.repeats = 8, 2, 2
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        rows.append(bench_vllm(args, Path(scratch)))
        if args.server:
            rows.append(bench_openai(args, Path(scratch)))
    for row in rows:
        print(f"{row['backend']:>6}: plain {row['plain_tokens_per_s']:8.1f} tok/s "
              f"({row['plain_wall_s']:.2f} s), ttc {row['ttc_tokens_per_s']:8.1f} tok/s "
              f"({row['ttc_wall_s']:.2f} s), overhead {100 * row['overhead']:+.1f}% "
              f"[{row['tokens_per_repeat']} tokens, median of {row['repeats']}]")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
