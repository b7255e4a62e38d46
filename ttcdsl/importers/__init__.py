"""Importers: logged samples from elsewhere into the samples table.

=====================  =====================================================================
format                 input
=====================  =====================================================================
``qwen25math-eval``    Qwen2.5-Math evaluation JSONL (idx, code, pred, score, pred_score)
``cruxeval-scored``    CRUXEval scored generations JSON (raw_generations, raw_scored_generations)
``generic``            any JSONL/CSV with one sample per line (or, exploded, one query per
                       line with lists of samples), through a :class:`FieldMapping`
``samples``            a samples table (.jsonl or .parquet): converts between the two
=====================  =====================================================================

Every importer returns a :class:`~ttcdsl.samples.SamplesTable` built entirely in memory, so a bad
line anywhere leaves nothing behind; ``ttc import`` then writes it atomically.
"""

from ttcdsl.importers.common import ImportOptions
from ttcdsl.importers.cruxeval import import_cruxeval_scored
from ttcdsl.importers.generic import FieldMapping, import_generic, import_generic_queries
from ttcdsl.importers.labels import Extractor, GoldLabeller
from ttcdsl.importers.qwen25math import import_qwen25math_eval
from ttcdsl.importers.tokens import TokenCounter, load_tokenizer

FORMATS: tuple[str, ...] = ("qwen25math-eval", "cruxeval-scored", "generic", "samples")

__all__ = [
    "FORMATS",
    "Extractor",
    "FieldMapping",
    "GoldLabeller",
    "ImportOptions",
    "TokenCounter",
    "import_cruxeval_scored",
    "import_generic",
    "import_generic_queries",
    "import_qwen25math_eval",
    "load_tokenizer",
]
