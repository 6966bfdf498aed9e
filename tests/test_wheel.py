"""pagewash as a user installs it: a wheel built from the tree, installed (not editable) in a fresh virtual
environment, runs on the sample dumps with its packaged rules."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from conftest import ROOT, SEEDS_RAW


def test_wheel_installed_in_a_fresh_venv_runs_the_sample_dumps(tmp_path: Path):
    dist = tmp_path / "dist"
    # the build backend comes from the test environment (setuptools is a test dependency): no index needed
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(ROOT)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = dist.glob("pagewash-*.whl")
    fresh = tmp_path / "venv"
    venv.create(fresh, with_pip=False)
    python = fresh / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    str(wheel)], check=True, capture_output=True, cwd=tmp_path)
    # the dependencies are this environment's, appended after the fresh one's own site-packages (where the
    # wheel went); a path line of a .pth file does not run that folder's own .pth files, so the editable
    # install of this checkout is not seen there
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")

    where = subprocess.run([str(python), "-c", "import pipeline; print(pipeline.__file__)"], check=True,
                           capture_output=True, text=True, cwd=tmp_path).stdout.strip()
    assert where.startswith(str(fresh)), where  # the wheel's copy, not this checkout
    raw = tmp_path / "raw"
    raw.mkdir()
    for seed in sorted(SEEDS_RAW.glob("*.txt")):
        (raw / seed.name).write_bytes(seed.read_bytes())
    proc = subprocess.run([str(fresh / "bin" / "pagewash"), "run", str(raw), "-o", str(tmp_path / "out"),
                           "--workers", "1"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["documents"] == 5 and report["rules_hit"], report
    check = subprocess.run([str(fresh / "bin" / "pagewash"), "rules", "check"], capture_output=True, text=True,
                           cwd=tmp_path)
    assert check.returncode == 0 and check.stdout.startswith("ok: "), check.stderr
    # the learned cleaner's model travels in the wheel and is the one the run used
    loaded = subprocess.run([str(python), "-c", "from pipeline.clean.linemodel import load_model, model_bytes; "
                             "import hashlib; m = load_model(); print(m.digest, hashlib.sha1(model_bytes(None))"
                             ".hexdigest()[:12])"], capture_output=True, text=True, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    digest, again = loaded.stdout.split()
    assert digest == again == hashlib.sha1((ROOT / "pipeline" / "models" / "cleaner.model.gz").read_bytes()
                                           ).hexdigest()[:12]
