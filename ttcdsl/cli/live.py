"""`ttc run --backend vllm|openai`: building a live backend from the command line, and refusing
policies that read what live generation does not measure."""

from __future__ import annotations

import sys

from ttcdsl.errors import UserError

# What a live backend measures of the observables a policy may read (ttcdsl.observables):
# answers and token counts always, logprobs on request, correctness where the dataset has gold,
# reward-model scores through a scorer (ttcdsl.runtime.reward).
_UNMEASURED = {
    "prompt_nll": "prompt NLLs (not measured by live generation yet)",
}


def live_backend(args, dataset, policy):
    """The vllm or openai backend for this run, over ``dataset``'s queries."""
    from ttcdsl.observables import policy_needs
    from ttcdsl.runtime import reward
    from ttcdsl.runtime.live import LiveQueries, parse_options

    needs = policy_needs(policy)
    for need in needs:
        if need.kind in _UNMEASURED:
            raise UserError(f"{need.reason} reads {_UNMEASURED[need.kind]}",
                            hint="the vllm and openai backends cannot provide it")
    if any(n.kind == "correct" for n in needs):
        lacking = [q.id for q in dataset if q.gold is None]
        if lacking:
            raise UserError(
                f"the policy reads correctness labels, but {len(lacking)} queries have no gold "
                f"answer (e.g. {lacking[0]!r})",
                hint="give every query a gold answer, or drop the rule that reads `correct`",
            )
    need_logprobs = any(n.kind == "logprobs" for n in needs)
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
        return reward.with_scorers(VllmBackend(options, queries, need_logprobs=need_logprobs),
                                   specs, queries, options)
    from ttcdsl.runtime.openai_backend import OPTIONS, OpenAIBackend

    options = parse_options(own, OPTIONS, "openai")
    if not args.endpoint and not partial:
        raise UserError("--backend openai needs --endpoint URL (repeat it for a pool of servers)")
    if options["model"] is None and manifest_model is not None:
        options["model"] = manifest_model
    return reward.with_scorers(
        OpenAIBackend(args.endpoint, options, queries, need_logprobs=need_logprobs),
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
