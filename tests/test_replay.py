"""`qd replay`: a self-contained page (no network), the archived score next to the replayed one."""

import base64
import html
import importlib.util
import json
import os
import re
from importlib import resources

import numpy as np
import pytest

from qd.cli import main
from qd.tasks.brax import replay

TINY = ["--task", "hopper_uni", "--task-option", "episode_length=30", "--task-option", "hidden_sizes=[8]",
        "--batch-size", "8", "--iterations", "2", "--chunk-size", "1", "--num-cells", "8", "--no-progress",
        "--compilation-cache", "false"]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """One tiny run and one `qd replay` of its best elite (one Brax compile for the whole module)."""
    out = tmp_path_factory.mktemp("replay")
    assert main(["run", *TINY, "--output-dir", str(out), "--run-name", "hop"]) == 0
    run_dir = out / "hop"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["replay", str(run_dir)]) == 0
    archive = np.load(run_dir / "archive.npz")
    return {"page": (run_dir / "replay_best.html").read_text(encoding="utf-8"), "stdout": buf.getvalue(),
            "path": str(run_dir / "replay_best.html"), "archive": archive}


def test_page_needs_no_network(replayed):
    page = replayed["page"]
    assert "http://" not in page and "https://" not in page  # no CDN script, import or stylesheet
    imports = json.loads(re.search(r'<script type="importmap">(.*?)</script>', page, re.S).group(1))["imports"]
    assert set(imports) == {*replay.VENDORED, *(f"brax-viewer/{m}" for m in replay.BRAX_MODULES)}
    three = base64.b64decode(imports["three"].split(",", 1)[1]).decode()
    assert three == (resources.files("qd.tasks.brax") / "viewer" / "three.module.js").read_text(encoding="utf-8")
    viewer = base64.b64decode(imports["brax-viewer/viewer.js"].split(",", 1)[1]).decode()
    assert "from 'brax-viewer/system.js'" in viewer and "from './" not in viewer  # relative imports resolved
    # Until the script hides it, the page shows what it needs (no white page without JavaScript).
    assert 'id="qd-message"' in page and "has not started" in page


def test_archived_and_replayed_scores_are_shown(replayed):
    lines = replayed["stdout"].strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("wrote ") and "cell " in lines[0]
    m = re.match(r"archived fitness (\S+), replayed (\S+?)[:( ]", lines[1])
    archived, replayed_fit = float(m.group(1)), float(m.group(2))
    archive = replayed["archive"]
    assert archived == pytest.approx(float(archive["fitnesses"][archive["filled"]].max()), rel=1e-3)
    assert ("differ" in lines[1]) == (not replay.scores_agree(archived, replayed_fit))
    assert html.escape(lines[1]) in replayed["page"]


def test_score_line_says_differ_exactly_when_scores_differ():
    assert replay.scores_agree(100.0, 100.05) and not replay.scores_agree(100.0, 100.2)
    assert replay.scores_agree(0.0, 0.0005) and not replay.scores_agree(0.0, 0.01)  # absolute floor near 0
    assert not replay.scores_agree(30.3, 4.8) and not replay.scores_agree(1.0, float("nan"))
    same, differ = replay.score_line(30.3, 30.3001), replay.score_line(30.3, 4.8)
    assert same == "archived fitness 30.3, replayed 30.3 (agree within 0.1%)"
    assert differ.startswith("archived fitness 30.3, replayed 4.8: they differ by more than 0.1%")
    assert "differ" not in same and replay.score_line(None, 4.8) == "replayed return 4.8"


def test_vendored_libraries_are_the_versions_brax_imports():
    index = (resources.files("brax") / "visualizer" / "index.html").read_text()
    assert f"three@{replay.VENDORED_VERSIONS['three']}/" in index
    assert f"lil-gui@{replay.VENDORED_VERSIONS['lil-gui']}/" in index
    for name in ("LICENSE.three", "LICENSE.lil-gui.md", "README.md"):
        assert (resources.files("qd.tasks.brax") / "viewer" / name).is_file()


def _checker():
    spec = importlib.util.spec_from_file_location(
        "check_replay_page", os.path.join(os.path.dirname(__file__), "..", "scripts", "check_replay_page.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_viewer_draws_offline_in_headless_chromium(replayed, tmp_path):
    checker = _checker()
    if checker.find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium): the offline browser check needs it")
    r = checker.check_page(replayed["path"], str(tmp_path / "shot.png"))
    assert r["status"] == "drawn" and r["error"] == "", r
    assert r["colours"] > 10, r  # the scene, not a flat page
    # A page whose modules cannot load shows its message and the error instead of a white page.
    broken = tmp_path / "broken.html"
    broken.write_text(re.sub(r'<script type="importmap">.*?</script>', "", replayed["page"], flags=re.S))
    r = checker.check_page(str(broken), str(tmp_path / "broken.png"))
    assert r["status"] == "error" and "brax-viewer" in r["error"], r
