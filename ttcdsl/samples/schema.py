"""The samples table: one row per generated sample, plus the metadata of the run that made them.

This module is the contract every other part reads (curves, replay, the simulator's fitting,
reports), so it holds only the data types and their invariants; reading and writing files lives in
:mod:`ttcdsl.samples.jsonl` and :mod:`ttcdsl.samples.parquet`.

Three types:

* :class:`SampleRow` — one sample, as a frozen value (what a runtime appends, what ``rows()`` yields).
* :class:`RunMeta` — who made the rows and how (model, backend, seed, sampling parameters, ...).
* :class:`SamplesTable` — many rows held column by column as read-only numpy arrays.

Column conventions of :class:`SamplesTable` (``n`` rows):

=====================  ================================  ===========================================
field                  type                              null
=====================  ================================  ===========================================
``query_id``           ``ndarray[object]`` of ``str``     never
``sample_index``       ``ndarray[int64]``                 never; unique within a query
``round``              ``ndarray[int64]``                 never (0 for a single-round or logged pool)
``prompt_tokens``      ``MaskedArray[int64]``             masked = unknown (never invented)
``completion_tokens``  ``MaskedArray[int64]``             masked = unknown
``finish_reason``      ``ndarray[object]``                ``None`` = unknown ("stop", "length", ...)
``text``               ``ndarray[object]``                ``None`` = not kept
``answer``             ``ndarray[object]``                ``None`` = no answer extracted (canonical;
                                                          ``""`` is read as ``None``)
``correct``            ``MaskedArray[bool]``              masked = no gold answer
``mean_logprob``       ``MaskedArray[float64]``           masked = not logged
``prompt_nll``         ``MaskedArray[float64]``           masked = not measured (mean NLL of the
                                                          prompt's tokens, nats; per query)
``scores``             ``Mapping[str, MaskedArray[f64]]`` a scorer's column is masked where absent
``temperature``        ``MaskedArray[float64]``           masked = unknown
``seed``               ``MaskedArray[int64]``             masked = unknown
=====================  ================================  ===========================================

Masked arrays keep "unknown" apart from any value: ``table.correct.filled(False)`` counts unknown
as wrong, ``np.ma.getmaskarray(table.correct)`` says which rows have no gold, and reductions such as
``table.completion_tokens.mean()`` skip unknown entries.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
"""Version of the on-disk layout of rows and metadata; bumped on any incompatible change."""

ROW_FIELDS: tuple[str, ...] = (
    "query_id",
    "sample_index",
    "round",
    "prompt_tokens",
    "completion_tokens",
    "finish_reason",
    "text",
    "answer",
    "correct",
    "mean_logprob",
    "prompt_nll",
    "scores",
    "temperature",
    "seed",
)
"""Field names of a row, in their canonical order (the order files write them in)."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class SchemaError(ValueError):
    """A value breaks the schema. ``field`` names the offending field (``None``: the whole row)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --------------------------------------------------------------------------------------- checks


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _check_str(name: str, value: object, *, nullable: bool) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str):
        expected = "a string or null" if nullable else "a string"
        raise SchemaError(f"{name} must be {expected}, got {_describe(value)}", field=name)


def _check_count(name: str, value: object, *, nullable: bool) -> None:
    if value is None and nullable:
        return
    if not _is_int(value):
        expected = "a non-negative integer or null" if nullable else "a non-negative integer"
        raise SchemaError(f"{name} must be {expected}, got {_describe(value)}", field=name)
    if value < 0:  # type: ignore[operator]
        raise SchemaError(f"{name} must be >= 0, got {value}", field=name)
    _check_int64(name, value)


def _check_int64(name: str, value: object) -> None:
    if not _INT64_MIN <= value <= _INT64_MAX:  # type: ignore[operator]
        raise SchemaError(f"{name} must fit in a signed 64-bit integer, got {value}", field=name)


def _check_real(name: str, value: object) -> None:
    if value is None:
        return
    if not _is_real(value):
        raise SchemaError(f"{name} must be a number or null, got {_describe(value)}", field=name)
    if not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise SchemaError(f"{name} must be finite, got {value}", field=name)


def _check_json_numbers(value: Any, where: str) -> None:
    """Refuse NaN and infinities in header metadata: JSON has no such numbers, so the header
    could be read (Python's parser accepts ``NaN``) but never written again."""
    if isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(f"{where} is {value}: not a JSON number", field=where)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_json_numbers(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_numbers(item, f"{where}[{index}]")


def _describe(value: object) -> str:
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


# ------------------------------------------------------------------------------------ SampleRow


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleRow:
    """One generated sample of one query.

    ``answer`` is the canonical extracted answer (``None``: nothing could be extracted);
    ``correct`` is ``None`` when the query has no gold answer. Token counts are ``None`` when
    unknown: they are never guessed. ``scores`` maps a scorer name (``"rm"``, ``"prm"``, ...) to
    that scorer's value for this sample.
    """

    query_id: str
    sample_index: int
    round: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    text: str | None = None
    answer: str | None = None
    correct: bool | None = None
    mean_logprob: float | None = None
    prompt_nll: float | None = None
    scores: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    temperature: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.answer == "":  # no answer, as in a table (_empty_answers_as_none)
            object.__setattr__(self, "answer", None)
        _check_str("query_id", self.query_id, nullable=False)
        if self.query_id == "":
            raise SchemaError("query_id must not be empty", field="query_id")
        _check_count("sample_index", self.sample_index, nullable=False)
        _check_count("round", self.round, nullable=False)
        _check_count("prompt_tokens", self.prompt_tokens, nullable=True)
        _check_count("completion_tokens", self.completion_tokens, nullable=True)
        _check_str("finish_reason", self.finish_reason, nullable=True)
        _check_str("text", self.text, nullable=True)
        _check_str("answer", self.answer, nullable=True)
        if self.correct is not None and not isinstance(self.correct, bool | np.bool_):
            raise SchemaError(
                f"correct must be true, false or null, got {_describe(self.correct)}",
                field="correct",
            )
        _check_real("mean_logprob", self.mean_logprob)
        _check_real("prompt_nll", self.prompt_nll)
        if self.mean_logprob is not None and self.mean_logprob > LOG_TOLERANCE:
            raise SchemaError(f"mean_logprob must be <= 0, got {self.mean_logprob}: {_LOGPROB_WHY}",
                              field="mean_logprob")
        if self.prompt_nll is not None and self.prompt_nll < -LOG_TOLERANCE:
            raise SchemaError(f"prompt_nll must be >= 0, got {self.prompt_nll}: {_NLL_WHY}",
                              field="prompt_nll")
        _check_real("temperature", self.temperature)
        if self.temperature is not None and self.temperature < 0:
            raise SchemaError(
                f"temperature must be >= 0, got {self.temperature}", field="temperature"
            )
        if self.seed is not None and not _is_int(self.seed):
            raise SchemaError(
                f"seed must be an integer or null, got {_describe(self.seed)}", field="seed"
            )
        if self.seed is not None:
            _check_int64("seed", self.seed)
        if not isinstance(self.scores, Mapping):
            raise SchemaError(
                f"scores must be a mapping of scorer name to number, got {_describe(self.scores)}",
                field="scores",
            )
        for name, value in self.scores.items():
            if not isinstance(name, str) or not name:
                raise SchemaError(
                    f"a scorer name must be a non-empty string, got {name!r}", field="scores"
                )
            if value is None or not _is_real(value):
                raise SchemaError(
                    f"scores.{name} must be a number, got {_describe(value)}",
                    field=f"scores.{name}",
                )
            _check_real(f"scores.{name}", value)
        # Normalise numeric types so equal rows compare equal whatever produced them.
        if self.correct is not None:
            object.__setattr__(self, "correct", bool(self.correct))
        for name in ("sample_index", "round", "prompt_tokens", "completion_tokens", "seed"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, int(value))
        for name in ("mean_logprob", "prompt_nll", "temperature"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        object.__setattr__(
            self, "scores", MappingProxyType({k: float(v) for k, v in self.scores.items()})
        )

    def to_dict(self) -> dict[str, Any]:
        """The row as plain JSON-ready values, fields in canonical order."""
        return {
            "query_id": self.query_id,
            "sample_index": self.sample_index,
            "round": self.round,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
            "text": self.text,
            "answer": self.answer,
            "correct": self.correct,
            "mean_logprob": self.mean_logprob,
            "prompt_nll": self.prompt_nll,
            "scores": dict(self.scores),
            "temperature": self.temperature,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleRow:
        """Build a row from a mapping with the row's field names (the JSON form).

        Unknown keys are an error; missing optional fields are null. A missing or null ``round``
        is 0, missing or null ``scores`` is empty, and a null score is left out.
        """
        unknown = sorted(set(data) - set(ROW_FIELDS))
        if unknown:
            raise SchemaError(
                f"unknown field {unknown[0]!r} (a row has: {', '.join(ROW_FIELDS)})",
                field=unknown[0],
            )
        for required in ("query_id", "sample_index"):
            if required not in data:
                raise SchemaError(f"missing required field {required!r}", field=required)
        values = dict(data)
        scores = values.get("scores")
        if scores is None:
            values["scores"] = _EMPTY
        elif isinstance(scores, Mapping):
            # In files a null score means "this scorer did not score this sample": leave it out.
            values["scores"] = {k: v for k, v in scores.items() if v is not None}
        if values.get("round") is None:
            values["round"] = 0
        return cls(**values)


def now_iso() -> str:
    """The current UTC time as an ISO-8601 string with seconds, e.g. ``2026-01-02T03:04:05Z``."""
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# -------------------------------------------------------------------------------------- RunMeta


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMeta:
    """Where the rows of a table came from.

    ``policy_hash`` is the hash of the policy that drove the run (``None`` for a logged pool);
    ``sampling`` holds the sampling parameters as given to the backend (temperature, top_p,
    max_tokens, ...). ``source`` says how the rows were obtained (e.g. ``"import qwen25math-eval
    from math_cot_100.jsonl"``) and ``tokenizer`` what counted the tokens (``None``: the counts
    came from the backend, or are unknown). ``notes`` holds anything else worth keeping.
    """

    schema_version: int = SCHEMA_VERSION
    policy_hash: str | None = None
    model: str | None = None
    backend: str | None = None
    seed: int | None = None
    sampling: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    created_at: str = field(default_factory=now_iso)
    source: str | None = None
    tokenizer: str | None = None
    notes: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if not _is_int(self.schema_version) or self.schema_version < 1:
            raise SchemaError(
                f"schema_version must be a positive integer, got {_describe(self.schema_version)}",
                field="schema_version",
            )
        if self.schema_version > SCHEMA_VERSION:
            raise SchemaError(
                f"schema_version {self.schema_version} is newer than this ttcdsl understands "
                f"({SCHEMA_VERSION}); upgrade ttcdsl",
                field="schema_version",
            )
        for name in ("policy_hash", "model", "backend", "source", "tokenizer"):
            _check_str(name, getattr(self, name), nullable=True)
        _check_str("created_at", self.created_at, nullable=False)
        if self.seed is not None and not _is_int(self.seed):
            raise SchemaError(
                f"seed must be an integer or null, got {_describe(self.seed)}", field="seed"
            )
        for name in ("sampling", "notes"):
            value = getattr(self, name)
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise SchemaError(f"{name} must be a mapping with string keys", field=name)
            _check_json_numbers(value, name)
            object.__setattr__(self, name, MappingProxyType(dict(value)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "policy_hash": self.policy_hash,
            "model": self.model,
            "backend": self.backend,
            "seed": self.seed,
            "sampling": dict(self.sampling),
            "created_at": self.created_at,
            "source": self.source,
            "tokenizer": self.tokenizer,
            "notes": dict(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunMeta:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SchemaError(f"unknown metadata field {unknown[0]!r}", field=unknown[0])
        values = {k: v for k, v in data.items() if v is not None or k not in ("sampling", "notes")}
        return cls(**values)


# --------------------------------------------------------------------------------- SamplesTable

# A mean token log-probability is <= 0 and a mean negative log-likelihood >= 0 (up to float
# rounding): the other sign is a log with the sign flipped, which would silently invert
# confidence-weighted votes and NLL bins.
LOG_TOLERANCE = 1e-6
_LOGPROB_WHY = "a mean token log-probability is never positive (a negative log-likelihood? negate it)"
_NLL_WHY = "a mean negative log-likelihood is never negative (a log-probability? negate it)"

_INT_MASKED = ("prompt_tokens", "completion_tokens", "seed")
_FLOAT_MASKED = ("mean_logprob", "prompt_nll", "temperature")
_OBJECT = ("finish_reason", "text", "answer")


def _readonly(array: np.ndarray, *, copy: bool) -> np.ndarray:
    """A read-only version of ``array``: a private copy, or (``copy=False``, for arrays nobody
    else holds) the same memory frozen in place. Arrays already read-only are shared as they are."""
    if isinstance(array, np.ma.MaskedArray):
        result = np.ma.MaskedArray(
            _freeze(np.ma.getdata(array), copy=copy),
            mask=_freeze(np.ma.getmaskarray(array), copy=copy),
            copy=False,
        )
        result.harden_mask()
        return result
    return _freeze(array, copy=copy)


def _freeze(array: np.ndarray, *, copy: bool) -> np.ndarray:
    if copy and _mutable_somewhere(array):
        array = array.copy()
    array.flags.writeable = False
    return array


def _mutable_somewhere(array: np.ndarray) -> bool:
    """Whether ``array`` or an ndarray it views can still be written through."""
    node: object = array
    while isinstance(node, np.ndarray):
        if node.flags.writeable:
            return True
        node = node.base
    return False


def _as_object(name: str, values: Any, n: int | None) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == object:
        array = values
    else:
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
    if array.ndim != 1:
        raise SchemaError(f"column {name} must be one-dimensional", field=name)
    return array


def _empty_answers_as_none(answers: np.ndarray) -> np.ndarray:
    """An empty answer is no answer (the canonical rule: ``canonical_vote``). A table written
    before that rule, or by hand, may say ``""`` for "nothing extracted"; read as an answer, every
    such sample of a query would vote for it, the voters outnumbering the real answers."""
    empty = np.asarray(answers == "", dtype=bool)  # elementwise on an object array
    if not empty.any():
        return answers
    answers = answers.copy()
    answers[empty] = None
    return answers


def _as_masked(name: str, values: Any, dtype: type) -> np.ma.MaskedArray:
    if isinstance(values, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(values)
        data = np.asarray(values.data)
        if data.dtype == object:
            data = np.where(mask, 0, data)
        data = data.astype(dtype, copy=True)
        return np.ma.MaskedArray(data, mask=mask.copy())
    seq = list(values)
    mask = np.fromiter((v is None for v in seq), dtype=bool, count=len(seq))
    fill = False if dtype is np.bool_ else 0
    data = np.array([fill if v is None else v for v in seq], dtype=dtype)
    if data.ndim != 1:
        raise SchemaError(f"column {name} must be one-dimensional", field=name)
    return np.ma.MaskedArray(data, mask=mask)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SamplesTable:
    """Rows held column by column (see the module docstring for each column's type and nulls).

    Every column is read-only and has one entry per row; ``(query_id, sample_index)`` is unique.
    Build one with :meth:`from_rows` or :meth:`from_columns` (which check these invariants), read
    one with :func:`ttcdsl.samples.load`.
    """

    meta: RunMeta
    query_id: np.ndarray
    sample_index: np.ndarray
    round: np.ndarray
    prompt_tokens: np.ma.MaskedArray
    completion_tokens: np.ma.MaskedArray
    finish_reason: np.ndarray
    text: np.ndarray
    answer: np.ndarray
    correct: np.ma.MaskedArray
    mean_logprob: np.ma.MaskedArray
    prompt_nll: np.ma.MaskedArray
    scores: Mapping[str, np.ma.MaskedArray]
    temperature: np.ma.MaskedArray
    seed: np.ma.MaskedArray
    _codes: np.ndarray = field(init=False, repr=False, compare=False)
    _unique: tuple[str, ...] = field(init=False, repr=False, compare=False)

    # ---------------------------------------------------------------------------- construction

    @classmethod
    def from_columns(
        cls,
        *,
        meta: RunMeta,
        query_id: Any,
        sample_index: Any,
        round: Any = None,  # noqa: A002 - the schema's field name
        prompt_tokens: Any = None,
        completion_tokens: Any = None,
        finish_reason: Any = None,
        text: Any = None,
        answer: Any = None,
        correct: Any = None,
        mean_logprob: Any = None,
        prompt_nll: Any = None,
        scores: Mapping[str, Any] | None = None,
        temperature: Any = None,
        seed: Any = None,
    ) -> SamplesTable:
        """Build a table from columns; a column left as ``None`` is all-null (``round``: all 0).

        Nullable columns accept a masked array or a sequence with ``None`` for null.
        """
        qid = _as_object("query_id", query_id, None)
        n = len(qid)
        none = [None] * n

        def masked(name: str, values: Any, dtype: type) -> np.ma.MaskedArray:
            return _as_masked(name, none if values is None else values, dtype)

        def obj(name: str, values: Any) -> np.ndarray:
            return _as_object(name, none if values is None else values, n)

        columns: dict[str, Any] = {
            "query_id": qid,
            "sample_index": np.asarray(sample_index, dtype=np.int64).copy(),
            "round": (
                np.zeros(n, dtype=np.int64)
                if round is None
                else np.asarray(round, dtype=np.int64).copy()
            ),
            "prompt_tokens": masked("prompt_tokens", prompt_tokens, np.int64),
            "completion_tokens": masked("completion_tokens", completion_tokens, np.int64),
            "finish_reason": obj("finish_reason", finish_reason),
            "text": obj("text", text),
            "answer": _empty_answers_as_none(obj("answer", answer)),
            "correct": masked("correct", correct, np.bool_),
            "mean_logprob": masked("mean_logprob", mean_logprob, np.float64),
            "prompt_nll": masked("prompt_nll", prompt_nll, np.float64),
            "temperature": masked("temperature", temperature, np.float64),
            "seed": masked("seed", seed, np.int64),
            "scores": {
                str(name): masked(f"scores.{name}", values, np.float64)
                for name, values in (scores or {}).items()
            },
        }
        return cls(meta=meta, **columns)

    @classmethod
    def from_rows(cls, rows: Iterable[SampleRow], *, meta: RunMeta) -> SamplesTable:
        """Build a table from :class:`SampleRow` values (in the given order)."""
        rows = list(rows)
        for i, row in enumerate(rows):
            if not isinstance(row, SampleRow):
                raise SchemaError(f"row {i} is a {type(row).__name__}, not a SampleRow")
        names: dict[str, None] = {}
        for row in rows:
            for name in row.scores:
                names.setdefault(name)
        return cls.from_columns(
            meta=meta,
            query_id=[r.query_id for r in rows],
            sample_index=[r.sample_index for r in rows],
            round=[r.round for r in rows],
            prompt_tokens=[r.prompt_tokens for r in rows],
            completion_tokens=[r.completion_tokens for r in rows],
            finish_reason=[r.finish_reason for r in rows],
            text=[r.text for r in rows],
            answer=[r.answer for r in rows],
            correct=[r.correct for r in rows],
            mean_logprob=[r.mean_logprob for r in rows],
            prompt_nll=[r.prompt_nll for r in rows],
            scores={name: [r.scores.get(name) for r in rows] for name in names},
            temperature=[r.temperature for r in rows],
            seed=[r.seed for r in rows],
        )

    @classmethod
    def _from_owned(
        cls,
        *,
        meta: RunMeta,
        columns: Mapping[str, Any],
        codes: np.ndarray,
        unique: tuple[str, ...],
    ) -> SamplesTable:
        """Internal fast path for readers: ``columns`` are fresh arrays nobody else holds (so they
        are frozen in place, not copied), string columns hold only ``str``/``None``, and
        ``codes``/``unique`` factorise ``query_id`` (first-appearance order). The other invariants
        are still checked."""
        table = object.__new__(cls)
        object.__setattr__(table, "meta", meta)
        for name in ROW_FIELDS:
            column = columns[name]
            object.__setattr__(table, name, _empty_answers_as_none(column) if name == "answer" else column)
        table._finish(copy=False, factorized=(codes, unique))
        return table

    def __post_init__(self) -> None:
        self._finish(copy=True, factorized=None)

    def _finish(self, *, copy: bool, factorized: tuple[np.ndarray, tuple[str, ...]] | None) -> None:
        """Check every invariant and make the columns read-only (copying them if ``copy``)."""
        if not isinstance(self.meta, RunMeta):
            raise SchemaError("meta must be a RunMeta", field="meta")
        n = len(self.query_id)
        for name in ROW_FIELDS:
            if name == "scores":
                continue
            column = getattr(self, name)
            if not isinstance(column, np.ndarray) or column.ndim != 1:
                raise SchemaError(
                    f"column {name} must be a one-dimensional numpy array", field=name
                )
            if len(column) != n:
                raise SchemaError(
                    f"column {name} has {len(column)} entries, query_id has {n}", field=name
                )
        for name in ("query_id", *_OBJECT):
            column = getattr(self, name)
            if column.dtype != object:
                raise SchemaError(f"column {name} must have dtype object", field=name)
            if name != "query_id" and factorized is None:
                bad = next(
                    (v for v in column.tolist() if v is not None and type(v) is not str), None
                )
                if bad is not None:
                    raise SchemaError(
                        f"column {name} must hold strings or None, found {_describe(bad)}",
                        field=name,
                    )
        for name in ("sample_index", "round"):
            column = getattr(self, name)
            if column.dtype != np.int64:
                raise SchemaError(f"column {name} must have dtype int64", field=name)
            if n and column.min() < 0:
                raise SchemaError(f"column {name} has a negative entry", field=name)
        for name, dtype in (
            *((c, np.int64) for c in _INT_MASKED),
            *((c, np.float64) for c in _FLOAT_MASKED),
            ("correct", np.bool_),
        ):
            column = getattr(self, name)
            if not isinstance(column, np.ma.MaskedArray) or column.dtype != dtype:
                raise SchemaError(
                    f"column {name} must be a numpy masked array of {np.dtype(dtype).name}",
                    field=name,
                )
        for name in ("prompt_tokens", "completion_tokens"):
            column = getattr(self, name)
            if n and column.count() and column.min() < 0:
                raise SchemaError(f"column {name} has a negative entry", field=name)
        if not isinstance(self.scores, Mapping):
            raise SchemaError("scores must map scorer names to columns", field="scores")
        for name, column in self.scores.items():
            if not isinstance(name, str) or not name:
                raise SchemaError(
                    f"a scorer name must be a non-empty string, got {name!r}", field="scores"
                )
            if (
                not isinstance(column, np.ma.MaskedArray)
                or column.dtype != np.float64
                or column.ndim != 1
            ):
                raise SchemaError(
                    f"score column {name!r} must be a one-dimensional masked array of float64",
                    field="scores",
                )
            if len(column) != n:
                raise SchemaError(
                    f"score column {name!r} has {len(column)} entries, query_id has {n}",
                    field="scores",
                )

        if factorized is None:
            codes, unique = _factorize(self.query_id)
        else:
            codes, unique = factorized
            codes = codes.astype(np.int64, copy=False)
            if len(codes) != n or (n and (codes.min() < 0 or codes.max() >= len(unique))):
                raise SchemaError("query id codes do not match the column", field="query_id")
            if any(not isinstance(u, str) or not u for u in unique):
                bad = next(u for u in unique if not isinstance(u, str) or not u)
                raise SchemaError(
                    f"query_id must be a non-empty string, got {_describe(bad)}", field="query_id"
                )
        for name in (*_FLOAT_MASKED,):
            column = getattr(self, name)
            if column.count() and not np.all(np.isfinite(column.compressed())):
                raise SchemaError(f"column {name} has a non-finite entry", field=name)
        if self.temperature.count() and self.temperature.min() < 0:
            raise SchemaError("column temperature has a negative entry", field="temperature")
        if self.mean_logprob.count() and self.mean_logprob.max() > LOG_TOLERANCE:
            raise SchemaError(f"column mean_logprob has a positive entry ({self.mean_logprob.max():g}): "
                              f"{_LOGPROB_WHY}", field="mean_logprob")
        if self.prompt_nll.count() and self.prompt_nll.min() < -LOG_TOLERANCE:
            raise SchemaError(f"column prompt_nll has a negative entry ({self.prompt_nll.min():g}): "
                              f"{_NLL_WHY}", field="prompt_nll")
        for name, column in self.scores.items():
            if column.count() and not np.all(np.isfinite(column.compressed())):
                raise SchemaError(f"score column {name!r} has a non-finite entry", field="scores")
        if n:
            order = np.lexsort((self.sample_index, codes))
            sc, si = codes[order], self.sample_index[order]
            dup = np.flatnonzero((sc[1:] == sc[:-1]) & (si[1:] == si[:-1]))
            if dup.size:
                first = order[dup[0] + 1]
                raise SchemaError(
                    f"duplicate sample: query {self.query_id[first]!r} has sample_index "
                    f"{int(self.sample_index[first])} twice (rows {int(order[dup[0]])} and {int(first)})",
                    field="sample_index",
                )

        for name in ROW_FIELDS:
            if name != "scores":
                object.__setattr__(self, name, _readonly(getattr(self, name), copy=copy))
        object.__setattr__(
            self,
            "scores",
            MappingProxyType(
                {name: _readonly(col, copy=copy) for name, col in self.scores.items()}
            ),
        )
        codes.flags.writeable = False
        object.__setattr__(self, "_codes", codes)
        object.__setattr__(self, "_unique", unique)

    # ------------------------------------------------------------------------------- reading

    def __len__(self) -> int:
        return len(self.query_id)

    def __eq__(self, other: object) -> bool:
        """Same metadata and the same rows in the same order (scorer columns compared by name)."""
        if not isinstance(other, SamplesTable):
            return NotImplemented
        if (
            self.meta != other.meta
            or len(self) != len(other)
            or set(self.scores) != set(other.scores)
        ):
            return False
        pairs = [(getattr(self, n), getattr(other, n)) for n in ROW_FIELDS if n != "scores"]
        pairs += [(col, other.scores[name]) for name, col in self.scores.items()]
        for mine, theirs in pairs:
            if isinstance(mine, np.ma.MaskedArray):
                mask = np.ma.getmaskarray(mine)
                if not np.array_equal(mask, np.ma.getmaskarray(theirs)):
                    return False
                if not np.array_equal(mine.data[~mask], theirs.data[~mask]):
                    return False
            elif not np.array_equal(mine, theirs):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    @property
    def score_names(self) -> tuple[str, ...]:
        return tuple(self.scores)

    def row(self, i: int) -> SampleRow:
        """Row ``i`` as a :class:`SampleRow`."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} out of range for a table of {n} rows")

        def get(column: np.ma.MaskedArray) -> Any:
            return None if np.ma.getmaskarray(column)[i] else column.data[i].item()

        return SampleRow(
            query_id=self.query_id[i],
            sample_index=int(self.sample_index[i]),
            round=int(self.round[i]),
            prompt_tokens=get(self.prompt_tokens),
            completion_tokens=get(self.completion_tokens),
            finish_reason=self.finish_reason[i],
            text=self.text[i],
            answer=self.answer[i],
            correct=get(self.correct),
            mean_logprob=get(self.mean_logprob),
            prompt_nll=get(self.prompt_nll),
            scores={
                name: col.data[i].item()
                for name, col in self.scores.items()
                if not np.ma.getmaskarray(col)[i]
            },
            temperature=get(self.temperature),
            seed=get(self.seed),
        )

    def rows(self) -> Iterator[SampleRow]:
        """Every row, in table order."""
        for i in range(len(self)):
            yield self.row(i)

    def query_ids(self) -> tuple[str, ...]:
        """The distinct query ids, in order of first appearance."""
        return self._unique

    def unlabelled_query_ids(self) -> tuple[str, ...]:
        """The queries with a sample whose correctness is unknown (masked), in order of first
        appearance: their accuracy and coverage cannot be measured (a sample of unknown label
        may be the correct one), so rates leave them out rather than count them wrong. A sample
        without an answer is never the correct one, labelled or not (the run's rule,
        :mod:`ttcdsl.runtime.aggregate`): its missing label leaves nothing unknown."""
        answered = np.array([a is not None for a in self.answer], dtype=bool)
        missing = np.ma.getmaskarray(self.correct) & answered
        if not missing.any():
            return ()
        codes = np.unique(self._codes[missing])
        return tuple(self._unique[c] for c in codes)

    @property
    def query_codes(self) -> np.ndarray:
        """``int64`` per row: the position of its query id in :meth:`query_ids`."""
        return self._codes

    def by_query(self) -> Mapping[str, np.ndarray]:
        """Query id -> row indices of its samples, ordered by ``sample_index``."""
        if not len(self):
            return MappingProxyType({})
        order = np.lexsort((self.sample_index, self._codes))
        bounds = np.flatnonzero(np.diff(self._codes[order])) + 1
        groups = np.split(order, bounds)
        result = {}
        for group in groups:
            group.flags.writeable = False
            result[self._unique[self._codes[group[0]]]] = group
        return MappingProxyType(result)

    # ----------------------------------------------------------------------------- filtering

    def take(self, indices: Sequence[int] | np.ndarray) -> SamplesTable:
        """A new table with the given rows, in the given order."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1:
            raise SchemaError("take expects a one-dimensional sequence of row indices")
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"row index out of range for a table of {n} rows")
        return SamplesTable(
            meta=self.meta,
            **{
                name: (
                    {k: v[idx] for k, v in self.scores.items()}
                    if name == "scores"
                    else getattr(self, name)[idx]
                )
                for name in ROW_FIELDS
            },
        )

    def filter(self, mask: Sequence[bool] | np.ndarray) -> SamplesTable:
        """A new table with the rows where ``mask`` is true."""
        array = np.asarray(mask)
        if array.dtype != np.bool_ or array.shape != (len(self),):
            raise SchemaError(f"filter expects a boolean mask of length {len(self)}")
        return self.take(np.flatnonzero(array))

    def where(
        self,
        *,
        query_ids: Iterable[str] | None = None,
        rounds: Iterable[int] | None = None,
        max_sample_index: int | None = None,
    ) -> SamplesTable:
        """Rows of the given queries and/or rounds, and/or with ``sample_index <= max_sample_index``."""
        mask = np.ones(len(self), dtype=bool)
        if query_ids is not None:
            wanted = set(query_ids)
            known = np.fromiter(
                (q in wanted for q in self._unique), dtype=bool, count=len(self._unique)
            )
            mask &= known[self._codes] if len(self) else mask
        if rounds is not None:
            mask &= np.isin(self.round, np.fromiter(rounds, dtype=np.int64))
        if max_sample_index is not None:
            mask &= self.sample_index <= max_sample_index
        return self.filter(mask)

    def with_meta(self, meta: RunMeta) -> SamplesTable:
        """The same rows under different metadata."""
        return SamplesTable(
            meta=meta,
            **{name: getattr(self, name) for name in ROW_FIELDS},
        )


def _factorize(values: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer codes per entry and the distinct values in order of first appearance."""
    index: dict[str, int] = {}
    setdefault = index.setdefault
    codes = np.fromiter(
        (setdefault(v, len(index)) for v in values.tolist()), dtype=np.int64, count=len(values)
    )
    for v in index:
        if not isinstance(v, str) or not v:
            raise SchemaError(
                f"query_id must be a non-empty string, got {_describe(v)}", field="query_id"
            )
    return codes, tuple(index)
