"""`ttc run --backend vllm|openai`: building a live backend from the command line, and refusing
policies that read what this run cannot measure (correctness without gold answers)."""

from __future__ import annotations

import sys

from ttcdsl.errors import UserError

# A live backend measures every observable a policy may read (ttcdsl.observables): answers and
# token counts always, logprobs and the prompt's NLL on request, reward-model scores through a
# scorer (ttcdsl.runtime.reward), and correctness where the dataset has gold answers.


def live_backend(args, dataset, policy):
    """The vllm or openai backend for this run, over ``dataset``'s queries."""
    from ttcdsl.observables import policy_needs
    from ttcdsl.runtime import reward
    from ttcdsl.runtime.live import LiveQueries, parse_options

    needs = policy_needs(policy)
    if any(n.kind == "correct" for n in needs):
        lacking = [q.id for q in dataset if q.gold is None]
        if lacking:
            raise UserError(
                f"the policy reads correctness labels, but {len(lacking)} queries have no gold "
                f"answer (e.g. {lacking[0]!r})",
                hint="give every query a gold answer, or drop the rule that reads `correct`",
            )
    need_logprobs = any(n.kind == "logprobs" for n in needs)
    need_prompt_nll = any(n.kind == "prompt_nll" for n in needs)
    queries = LiveQueries(dataset)
    manifest_model = getattr(args, "manifest_model", None)
    own, scorer_items = reward.split_options(args.backend_option)
    read = list(dict.fromkeys(n.column for n in needs if n.kind == "score"))
    # A partial report generates nothing: the stored samples carry their scores.
    partial = getattr(args, "partial", False)
    specs = [] if partial else reward.scorer_specs(scorer_items, policy, read, args.backend)
    if args.backend == "vllm":
        from ttcdsl.runtime.vllm_backend import OPTIONS, VllmBackend

        if args.endpoint:
            raise UserError("--endpoint is for --backend openai")
        options = parse_options(own, OPTIONS, "vllm")
        if options["model"] is None:
            options["model"] = manifest_model or _default_model()
        return reward.with_scorers(
            VllmBackend(options, queries, need_logprobs=need_logprobs,
                        need_prompt_nll=need_prompt_nll),
            specs, queries, options,
        )
    from ttcdsl.runtime.executor import print_progress
    from ttcdsl.runtime.openai_backend import OPTIONS, OpenAIBackend

    options = parse_options(own, OPTIONS, "openai")
    if not args.endpoint and not partial:
        raise UserError("--backend openai needs --endpoint URL (repeat it for a pool of servers)")
    if options["model"] is None and manifest_model is not None:
        options["model"] = manifest_model
    return reward.with_scorers(
        OpenAIBackend(args.endpoint, options, queries, need_logprobs=need_logprobs,
                      need_prompt_nll=need_prompt_nll,
                      progress=None if getattr(args, "quiet", True) else print_progress),
        specs, queries, options,
    )


def _default_model() -> str:
    from ttcdsl.models import default_folder, prepared

    folder = default_folder("smollm2")
    if not prepared(folder):
        raise UserError(
            "the vllm backend needs a model",
            hint="--backend-option model=FOLDER_OR_HF_ID, or `ttc model prepare smollm2` once "
            "for the default (SmolLM2-135M-Instruct)",
        )
    print(f"ttc run: model {folder} (the prepared smollm2)", file=sys.stderr)
    return str(folder)


def check_same_settings(run_dir, manifest, meta, backend) -> None:
    """A resume generates with the run's own model and sample-affecting options: anything else
    would mix two models' samples in one run."""
    if backend.model != manifest.model:
        raise UserError(
            f"{run_dir} ran with model {manifest.model!r}, not {backend.model!r}",
            hint="resume without --backend-option model (the run keeps its model)",
        )
    stored = dict(meta.notes.get("backend_settings") or {})
    for key, value in backend.settings.items():
        if key in stored and stored[key] != value:
            raise UserError(
                f"{run_dir} ran with --backend-option {key}={stored[key]!r}, not {value!r}",
                hint="resume with the options the run started with (its manifest's command)",
            )
