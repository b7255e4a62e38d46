"""`ttc import`: convert logged samples into a samples table (.jsonl store or .parquet).

    ttc import pool.jsonl --format qwen25math-eval -o math100.jsonl --temperature 0.7
    ttc import scored.json --format cruxeval-scored -o crux.parquet --tokenizer tokenizer.json
    ttc import log.csv --format generic -o t.jsonl --query-id-field qid --answer-field pred \\
        --correct-field ok --text-field response --score-field rm=reward
    ttc import t.jsonl --format samples -o t.parquet      # convert between table formats
    ttc import pool.jsonl --format generic --explode --query-id-field idx --text-field code \\
        --extract math --gold-field gt --prompt-field question -o t.jsonl --queries-out q.jsonl

Generic mapping: one sample per JSONL line or CSV row. Each --*-field names the input field for
a column; dotted names reach into nested JSON objects (usage.completion_tokens), a number
picks a list's entry (response.body.choices.0.message.content), and a key applied to a list of
objects takes it from each (outputs.text, with --explode). Only
--query-id-field is required; without --sample-index-field samples are numbered 0, 1, ... per
query in file order. correct accepts true/false, 1/0, yes/no; a JSON null or an empty CSV cell is
null; a mapped field missing from a line is an error. Token counts come from the mapped count
fields, else (with --tokenizer) from --text-field / --prompt-field, else stay null.

One line per query with lists of samples (--explode): the sample fields (--text-field,
--answer-field, --correct-field, --finish-reason-field, --completion-tokens-field,
--mean-logprob-field, --seed-field, --sample-index-field, --score-field) hold equally long lists,
entry j being sample j; the others are the query's. --extract KIND or --extract-regex PATTERN
takes the answers from --text-field with ttcdsl.answers; --gold-field labels correctness against
the gold answer with ttcdsl.answers.is_correct, in the answer kind (--answer-kind, else the
--extract kind). The table's metadata notes record the extractor and the labelling.
--queries-out writes the queries file `ttc run --queries` reads (ids matching the table).

The whole input is read and checked before anything is written; the output then appears
atomically (temporary file in the same directory, fsync, rename), so a failed import never leaves
a partial table. An existing output is refused unless --force is given. Problems in the input are
reported as FILE:LINE: field 'NAME': what is wrong.
"""

from __future__ import annotations

import argparse
import sys

from ttcdsl.cli.usage import remember_parser, usage_error

GENERIC_FIELDS = (
    ("query_id", "the query's id (required for --format generic)"),
    ("sample_index", "the sample's index within its query (default: 0, 1, ... in file order)"),
    ("round", "the round that produced the sample (default 0)"),
    ("answer", "the extracted answer (canonicalised when --answer-kind is given)"),
    ("correct", "correctness: true/false, 1/0 (or 1.0/0.0), yes/no (empty or null: no gold)"),
    ("text", "the full response text (tokens are counted from it with --tokenizer)"),
    ("prompt", "the prompt text (prompt tokens are counted from it with --tokenizer)"),
    ("finish_reason", "why generation stopped (stop, length, ...)"),
    ("prompt_tokens", "logged prompt token count"),
    ("completion_tokens", "logged completion token count"),
    ("mean_logprob", "mean token log-probability"),
    ("prompt_nll", "the prompt's mean token negative log-likelihood (nats)"),
    ("temperature", "sampling temperature of the sample"),
    ("seed", "sampling seed of the sample"),
    ("gold", "the gold answer: label correctness against it (needs an answer kind)"),
)


# The same names as ttcdsl.importers.FORMATS (kept here so that building the parser imports
# nothing heavy: every `ttc` command builds it).
FORMATS = ("qwen25math-eval", "cruxeval-scored", "generic", "samples")
ANSWER_KINDS = ("math", "multiple_choice", "exact", "code")
EXTRACT_KINDS = ("math", "multiple_choice", "exact")  # ttcdsl.importers.labels.EXTRACT_KINDS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import",
        help="convert logged samples into a samples table",
        description=(
            "Convert logged samples into a samples table. Formats: qwen25math-eval (Qwen2.5-Math "
            "evaluation JSONL), cruxeval-scored (CRUXEval scored generations JSON), generic "
            "(JSONL/CSV with one sample per line, mapped with the --*-field options), samples "
            "(an existing .jsonl/.parquet table, to convert it). The output format follows its "
            "extension: .jsonl or .parquet."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("input", help="the log to import")
    parser.add_argument("--format", "-f", required=True, choices=FORMATS, help="the input's format")
    parser.add_argument(
        "--output", "-o", required=True, help="the table to write (.jsonl or .parquet)"
    )
    parser.add_argument("--force", action="store_true", help="replace the outputs if they exist")
    parser.add_argument(
        "--queries-out",
        metavar="Q.jsonl",
        help="also write the log's queries as a queries file for `ttc run --queries` "
        "(qwen25math-eval; generic with --prompt-field and an answer kind)",
    )

    run_group = parser.add_argument_group("about the run that produced the log (metadata)")
    run_group.add_argument("--model", help="the model that generated the samples")
    run_group.add_argument("--backend", help="what served it (default: import)")
    run_group.add_argument("--seed", type=int, help="the run's seed")
    run_group.add_argument(
        "--temperature", type=float, help="sampling temperature (also fills each row's temperature)"
    )
    run_group.add_argument(
        "--tokenizer",
        metavar="PATH",
        help="tokenizer.json, or a local model folder with one: count tokens of the logged texts",
    )
    run_group.add_argument(
        "--no-text", action="store_true", help="leave response texts out of the table"
    )
    run_group.add_argument(
        "--answer-kind",
        choices=ANSWER_KINDS,
        help="canonicalise answers as this kind (defaults: math for qwen25math-eval, exact for "
        "cruxeval-scored, none for generic)",
    )
    run_group.add_argument(
        "--score-name",
        default="rm",
        help="qwen25math-eval: the scorer name for pred_score (default: rm)",
    )

    generic = parser.add_argument_group(
        "generic JSONL/CSV mapping (dotted paths reach nested keys)"
    )
    generic.add_argument(
        "--input-format", choices=("jsonl", "csv"), help="default: from the extension"
    )
    for name, help_text in GENERIC_FIELDS:
        generic.add_argument(
            f"--{name.replace('_', '-')}-field",
            dest=f"{name}_field",
            metavar="FIELD",
            help=help_text,
        )
    generic.add_argument(
        "--score-field",
        action="append",
        default=[],
        metavar="NAME=FIELD",
        help="a scorer's value (repeatable), e.g. --score-field rm=reward",
    )
    generic.add_argument(
        "--na",
        action="append",
        default=None,
        metavar="TEXT",
        help="CSV: a cell holding TEXT is a missing value, as an empty cell is (repeatable; R "
        "writes NA). Without it, a cell holding NA, N/A, #N/A, NaN or NULL is refused; "
        "--na '' takes such cells as written",
    )
    generic.add_argument(
        "--explode",
        action="store_true",
        help="one JSONL line per query, with lists of samples: the sample fields (text, answer, "
        "correct, finish reason, completion tokens, logprob, seed, scores) hold equally long "
        "lists; the others (query id, prompt, prompt tokens, round, temperature, gold) are "
        "the query's",
    )
    extract = generic.add_mutually_exclusive_group()
    extract.add_argument(
        "--extract",
        choices=EXTRACT_KINDS,
        help="extract answers from --text-field with ttcdsl.answers (and canonicalise them as "
        "this kind)",
    )
    extract.add_argument(
        "--extract-regex",
        metavar="PATTERN",
        help="extract answers from --text-field: the last match (the first of its groups that "
        "took part, if it has groups)",
    )
    parser.set_defaults(run=run)
    remember_parser(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ttcdsl.errors import UserError
    from ttcdsl.samples import content_hash, save
    from ttcdsl.samples.io import table_format

    source = Path(args.input)
    output = Path(args.output)
    try:
        table_format(output)  # an unknown extension fails before any work
    except UserError as error:
        if output.is_dir():  # what is on disk, not the command line: exit 1
            raise
        usage_error(args, error.message, hint=error.hint)
    _check_flags(args)
    if not source.exists():
        raise UserError(f"{source}: no such file")
    if output.exists() and not args.force:
        raise UserError(f"{output}: already exists", hint="pass --force to replace it")
    if output.resolve() == source.resolve():
        raise UserError(
            f"{output}: the output would overwrite the input", hint="choose another path"
        )
    queries_out = Path(args.queries_out) if args.queries_out else None
    if queries_out is not None:
        if queries_out.resolve() in (source.resolve(), output.resolve()):
            usage_error(args, f"--queries-out {queries_out}: the same file as the input or output")
        if queries_out.exists() and not args.force:
            raise UserError(f"{queries_out}: already exists", hint="pass --force to replace it")
        if queries_out.is_dir():
            raise UserError(f"--queries-out {queries_out}: is a directory")
        if not queries_out.parent.is_dir():
            raise UserError(f"--queries-out {queries_out}: the directory {queries_out.parent} does not exist",
                            hint="create it first, or choose another path")
    table, dataset = _import(args, source)
    if args.tokenizer and table.meta.tokenizer is None:
        print("ttc import: warning: --tokenizer counted nothing: it counts the texts of --text-field "
              "and --prompt-field where their counts are not logged, and here there was none",
              file=sys.stderr)
    existed = output.exists()
    try:
        save(table, output)  # atomic: on failure the old output (or none) is left as it was
    except OSError as error:
        raise UserError(
            f"{output}: cannot write the table ({error.strerror or error})",
            hint="nothing was written; check the directory's space and permissions",
        ) from None
    if queries_out is not None:
        from ttcdsl.datasets import write_queries

        try:
            write_queries(dataset, queries_out)
        except OSError as error:
            if not existed:  # a failed import leaves no table behind (a replaced one is gone)
                output.unlink(missing_ok=True)
            raise UserError(
                f"{queries_out}: cannot write the queries ({error.strerror or error})",
                hint=None if existed else f"nothing was written: {output} was removed again",
            ) from None
    _summary(table, output, content_hash(table))
    if queries_out is not None:
        print(f"  queries: {len(dataset)} written to {queries_out}")
    if dataset is not None:
        _warn_gold_conflicts(table, dataset, source)
    from ttcdsl.samples.labels import label_conflict_warning

    # labels that disagree within one answer make plan and replay disagree: said at the source
    conflict = label_conflict_warning(table, str(output))
    if conflict:
        print(f"ttc import: warning: {conflict}", file=sys.stderr)
    return 0


def _warn_gold_conflicts(table, dataset, source) -> None:  # noqa: ANN001
    from ttcdsl.samples.gold import gold_conflicts

    conflicts, complete = gold_conflicts(table, dataset.queries)
    if conflicts:
        query_id, what = conflicts[0]
        print(f"ttc import: warning: in {'' if complete else 'at least '}{len(conflicts)} of {len(dataset)} queries of {source} the "
              f"log's labels contradict its gold answer (e.g. {query_id!r}: {what}); the table "
              "keeps the log's labels, and plans and replays score by them", file=sys.stderr)


def _check_flags(args: argparse.Namespace) -> None:
    """Flag values and combinations the command cannot take: exit 2, before any work."""
    if args.format != "generic":
        given = [
            f"--{n.replace('_', '-')}-field"
            for n, _ in GENERIC_FIELDS
            if getattr(args, f"{n}_field")
        ]
        for flag in ("score_field", "input_format", "explode", "extract", "extract_regex", "na"):
            if getattr(args, flag):
                given.append(f"--{flag.replace('_', '-')}")
        if given:
            usage_error(
                args,
                f"{given[0]} applies only to --format generic",
                hint=f"the {args.format} format knows where its fields are",
            )
    if args.format == "samples" and (
        args.tokenizer or args.answer_kind or args.model or args.temperature is not None
    ):
        usage_error(
            args,
            "--format samples converts a table as it is",
            hint="metadata and token options apply when importing a log",
        )
    if args.temperature is not None and not args.temperature >= 0:
        usage_error(args, f"--temperature must be >= 0, got {args.temperature}")
    if not args.score_name:
        usage_error(args, "--score-name must not be empty")
    if args.format == "generic" and not args.query_id_field:
        usage_error(
            args,
            "--format generic needs --query-id-field",
            hint="name the field that holds each sample's query id",
        )
    if args.queries_out and args.format in ("cruxeval-scored", "samples"):
        usage_error(
            args,
            f"--queries-out: a {args.format} file holds no questions",
            hint="write the CRUXEval questions with `ttc queries cruxeval-output` "
            "(or cruxeval-input); their ids match the imported table"
            if args.format == "cruxeval-scored"
            else "a table's queries come with the log it was imported from",
        )
    if args.queries_out and args.format == "generic" and not args.prompt_field:
        usage_error(args, "--queries-out needs --prompt-field (the question of each query)")
    for item in args.score_field:
        name, sep, field = item.partition("=")
        if not sep or not name.strip() or not field.strip():
            usage_error(
                args,
                f"--score-field {item!r}: expected NAME=FIELD",
                hint="e.g. --score-field rm=reward",
            )


def _import(args: argparse.Namespace, source):  # noqa: ANN001, ANN202
    from ttcdsl.errors import UserError
    from ttcdsl.importers import (
        FieldMapping,
        ImportOptions,
        import_cruxeval_scored,
        import_qwen25math_eval,
        load_tokenizer,
    )
    from ttcdsl.importers.generic import (
        answer_kind_for,
        generic_format,
        import_generic,
        import_generic_queries,
    )
    from ttcdsl.importers.labels import Extractor

    if args.format == "samples":
        from ttcdsl.samples import load

        table = load(source)
        if args.no_text:
            table = _without_text(table)
        return table, None

    options = ImportOptions(
        model=args.model,
        backend=args.backend,
        seed=args.seed,
        temperature=args.temperature,
        tokenizer=load_tokenizer(args.tokenizer) if args.tokenizer else None,
        keep_text=not args.no_text,
        answer_kind=args.answer_kind,
    )
    if args.format == "qwen25math-eval":
        table = import_qwen25math_eval(source, options, score_name=args.score_name)
        from ttcdsl.datasets import load_qwen25math_pool_questions

        if args.queries_out:
            return table, load_qwen25math_pool_questions(source)  # the same ids (idx)
        try:  # to hold the labels to the gold; a log without its questions still imports
            return table, load_qwen25math_pool_questions(source)
        except UserError:
            return table, None
    if args.format == "cruxeval-scored":
        return import_cruxeval_scored(source, options), None
    scores = [tuple(part.strip() for part in item.partition("=")[::2]) for item in args.score_field]
    try:
        mapping = FieldMapping(
            **{name: getattr(args, f"{name}_field") for name, _ in GENERIC_FIELDS},
            scores=tuple(scores),
        )
        extractor = None
        if args.extract or args.extract_regex:
            extractor = Extractor(kind=args.extract, pattern=args.extract_regex)
        file_format = args.input_format or generic_format(source)
        # Flag combinations that cannot mean anything (exit 2 before the log is read).
        kind = answer_kind_for(mapping, options, file_format, args.explode, extractor)
    except UserError as error:  # an empty field name, a scorer mapped twice, a bad regex, ...
        usage_error(args, error.message, hint=error.hint)
    if args.queries_out and kind is None:
        usage_error(
            args,
            "--queries-out needs the queries' answer kind",
            hint="give --answer-kind, or extract answers by kind (--extract)",
        )
    if args.na is not None and file_format != "csv":
        usage_error(args, "--na applies to a CSV log", hint="in JSON a missing value is null")
    read = dict(file_format=file_format, explode=args.explode, extractor=extractor,
                na=None if args.na is None else tuple(args.na),
                progress=lambda message: print(f"ttc import: {message}", file=sys.stderr, flush=True))
    if args.queries_out:
        return import_generic_queries(source, mapping, options, **read)
    return import_generic(source, mapping, options, **read), None


def _without_text(table):  # noqa: ANN001, ANN202
    import numpy as np

    from ttcdsl.samples import SamplesTable
    from ttcdsl.samples.schema import ROW_FIELDS

    columns = {name: getattr(table, name) for name in ROW_FIELDS}
    columns["text"] = np.full(len(table), None, dtype=object)
    return SamplesTable(meta=table.meta, **columns)


def _summary(table, output, digest: str) -> None:  # noqa: ANN001
    import numpy as np

    queries = len(table.query_ids())
    per_query = np.bincount(table.query_codes) if len(table) else np.zeros(1, dtype=int)
    low, high = int(per_query.min()), int(per_query.max())
    def many(n: int, one: str, other: str) -> str:
        return f"{n} {one if n == 1 else other}"

    shape = (f"{many(low, 'sample', 'samples')} each" if low == high
             else f"{low}-{high} samples per query")
    known = table.correct.count()
    correct = int(table.correct.sum()) if known else 0
    parts = [f"imported {many(len(table), 'sample', 'samples')} "
             f"({many(queries, 'query', 'queries')}, {shape}) into {output}"]
    notes = table.meta.notes
    answered = sum(a is not None for a in table.answer)
    if "extractor" in notes:
        parts.append(f"  answers: {notes['extractor']}; extracted from {answered} of {len(table)} samples")
    if len(table) and not answered:
        # every sample answerless: votes have nothing to count and every label reads wrong
        mapping = notes.get("mapping") or {}
        if "extractor" in notes:
            why = f"the extraction found none in {len(table)} samples; check the extraction pattern"
        elif "answer" in mapping:
            why = f"the answer field {mapping['answer']!r} is empty on every line"
        else:
            why = ("no answer is mapped: give --answer-field, or --extract from --text-field; "
                   "without answers a vote has nothing to count")
        print(f"ttc import: warning: no sample has an answer ({why})", file=sys.stderr)
    if "finish_reasons_unknown" in notes:
        print(f"ttc import: warning: {notes['finish_reasons_unknown']}", file=sys.stderr)
    if "logprobs_look_summed" in notes:
        print(f"ttc import: warning: {notes['logprobs_look_summed']}", file=sys.stderr)
    if "failed_requests" in notes:
        print(f"ttc import: warning: {notes['failed_requests']}", file=sys.stderr)
    if "no_answer_marker" in notes:
        print(f"ttc import: note: {notes['no_answer_marker']}", file=sys.stderr)
    if "query_ids_mixed" in notes:
        print(f"ttc import: warning: {notes['query_ids_mixed']}; if they are different "
              "queries, give them different ids", file=sys.stderr)
    if "prompts_differ" in notes:
        # a query's samples should answer one question: two logs that number their queries
        # alike, concatenated, read as one query per id
        print(f"ttc import: warning: {notes['prompts_differ']}; if these are different questions, "
              "give them different query ids", file=sys.stderr)
    parts.append(f"  correct: {correct}/{known} with gold" if known else "  correct: no gold")
    if "equivalence_timeouts" in notes:
        parts[-1] += f" (labelled at import; {notes['equivalence_timeouts']} comparisons timed out)"
    if table.scores:
        parts.append(f"  scores: {', '.join(table.scores)}")
    tokens = table.completion_tokens.count()
    parts.append(
        f"  completion tokens: {'known for ' + str(tokens) + ' samples' if tokens else 'unknown'}"
        + (f" ({_completion_source(notes)})" if tokens else "")
    )
    parts.append(f"  content hash: {digest}")
    print("\n".join(parts))


def _completion_source(notes) -> str:  # noqa: ANN001
    """Where the completion token counts came from, as the table's notes record it."""
    for part in (notes.get("token_counts") or "").split("; "):
        if "completion_tokens" in part and "counted with" in part:
            return "counted with " + part.split("counted with ", 1)[1].split(" from ", 1)[0]
    return "as logged"
