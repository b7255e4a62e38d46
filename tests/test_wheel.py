"""The built wheel carries the grammar: a non-editable install parses every example policy."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.paths import POLICIES, REPO


@pytest.mark.slow
def test_wheel_installs_and_checks_policies_outside_the_source_tree(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = dist.glob("ttcdsl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ttcdsl/grammar/ttc.lark" in names
    assert any(n.startswith("simulator/") for n in names)

    # A fresh environment that sees the dependencies installed where the tests run but gets
    # ttcdsl only from the wheel. `system_site_packages` would see the BASE interpreter's
    # packages, not an outer venv's (where a user following the README runs the tests), so the
    # test interpreter's own site-packages are listed in a .pth file instead: plain paths,
    # appended after the new environment's site-packages, and their own .pth files (an editable
    # install of ttcdsl) are not processed.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    outer = dict.fromkeys(
        [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    )
    (Path(own) / "outer-site-packages.pth").write_text("\n".join(outer) + "\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    for policy in POLICIES:
        shutil.copy(policy, workdir / policy.name)
    where = subprocess.run(
        [str(python), "-c", "import ttcdsl.lang.grammar as g, ttcdsl; print(ttcdsl.__file__)"],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    assert str(env_dir) in where.stdout, where.stdout + where.stderr
    check = subprocess.run(
        [str(env_dir / "bin" / "ttc"), "check", *sorted(p.name for p in workdir.glob("*.ttc"))],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": ok (policy ") == len(POLICIES)
