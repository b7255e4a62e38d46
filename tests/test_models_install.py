"""The last step of ``ttc model prepare``: the converted folder is moved into place, and a second
preparation that finishes after another (two test workers, two shells) keeps the first's folder:
it deleted it and renamed its own in, under an engine already loading the first."""

from __future__ import annotations

from pathlib import Path

from ttcdsl.models import install, prepared


def _converted(path: Path, mark: str) -> Path:
    path.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (path / name).write_text("{}")
    (path / "made_by").write_text(mark)
    return path


def test_a_conversion_is_moved_into_an_absent_or_empty_folder(tmp_path):
    folder = tmp_path / "models" / "smollm2"
    folder.parent.mkdir()
    assert install(_converted(tmp_path / ".a", "a"), folder) is True
    assert prepared(folder) and (folder / "made_by").read_text() == "a"
    assert not (tmp_path / ".a").exists()
    empty = tmp_path / "models" / "empty"
    empty.mkdir()
    assert install(_converted(tmp_path / ".b", "b"), empty) is True
    assert (empty / "made_by").read_text() == "b"


def test_a_second_conversion_keeps_the_folder_another_process_finished(tmp_path):
    folder = _converted(tmp_path / "smollm2", "first")
    assert install(_converted(tmp_path / ".second", "second"), folder) is False
    assert (folder / "made_by").read_text() == "first"
    assert not (tmp_path / ".second").exists()


def test_force_replaces_a_prepared_folder(tmp_path):
    folder = _converted(tmp_path / "smollm2", "old")
    assert install(_converted(tmp_path / ".new", "new"), folder, force=True) is True
    assert (folder / "made_by").read_text() == "new"
