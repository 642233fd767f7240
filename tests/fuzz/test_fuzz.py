"""The fuzz suite: a corpus of hostile files (corpus.py) and hypothesis properties (properties.py), each
run in a subprocess under a 3 GiB address-space limit, with per-case alarms for hangs.

Asserted for every case: no code ran (the canary file a YAML/JSON Python tag would create is absent),
the exit code, exactly one `studio: error:` line and no traceback or "internal error" for a refused
input, the project unchanged (every table row and every file in its folder), no media pointing outside
the dataset, each case within seconds, and the worker's peak memory bounded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import CANARY, build, to_json

from studio.db import Project

HERE = Path(__file__).parent
PEAK_RSS_MB = 1500
"""What the worker may reach in all (Python, numpy, OpenCV, Pillow, SQLAlchemy and every case)."""
CASE_SECONDS = 10


@pytest.fixture(scope="module")
def corpus_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    base = tmp_path_factory.mktemp("fuzz")
    project = base / "project"
    Project.create(project).close()
    cases = build(base, project)
    (base / "cases.json").write_text(to_json(cases))
    results_file = base / "results.jsonl"
    run = subprocess.run(
        [sys.executable, str(HERE / "worker.py"), str(base / "cases.json"), str(project), str(results_file)],
        capture_output=True, text=True, timeout=240, cwd=base,
    )
    lines = [json.loads(line) for line in results_file.read_text().splitlines()] if results_file.exists() else []
    results = {line["name"]: line for line in lines if "name" in line}
    started = [line["started"] for line in lines if "started" in line]
    assert run.returncode == 0, f"worker died (exit {run.returncode}) in case {started[-1] if started else None}: {run.stderr[-2000:]}"
    assert not (base / CANARY).exists(), "a hostile file ran code"
    assert sorted(results) == sorted(case.name for case in cases)
    for case in cases:
        results[case.name]["expect"] = case.expect
    return results


def _case_names() -> list[str]:
    """The corpus's case names, for one test id per case (built in a throw-away folder)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return [case.name for case in build(Path(folder), Path(folder) / "project")]


@pytest.mark.slow
@pytest.mark.parametrize("name", _case_names())
def test_hostile_file(corpus_results: dict[str, dict], name: str) -> None:
    result = corpus_results[name]
    assert result["code"] != "hang", f"{name} hung"
    assert result["seconds"] < CASE_SECONDS, result
    assert not result["outside_media"], f"{name} added a file from outside the dataset"
    stderr_lines = result["stderr"].splitlines()
    assert "Traceback" not in result["stderr"] and "internal error" not in result["stderr"], result
    if result["expect"] == "error":
        assert result["code"] == 1, result
        assert len(stderr_lines) == 1 and stderr_lines[0].startswith("studio: error: "), result
        assert result["unchanged"], f"{name} changed the project"
    else:
        assert result["code"] == 0, result
        assert stderr_lines and all(line.startswith("skipped: ") for line in stderr_lines), result
    assert "/private/user/path.png" not in result["stderr"] and "INSERT" not in result["stderr"]  # no SQL, no parameters


@pytest.mark.slow
def test_fuzz_memory_is_bounded(corpus_results: dict[str, dict]) -> None:
    peak = max(result["peak_rss_mb"] for result in corpus_results.values())
    print(f"fuzz corpus: {len(corpus_results)} cases, peak RSS {peak} MB")
    assert peak < PEAK_RSS_MB


@pytest.mark.slow
def test_hypothesis_properties_hold_in_a_subprocess(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(HERE / "properties.py"), str(tmp_path), "150"],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert run.returncode == 0, f"properties worker died (exit {run.returncode}): {run.stderr[-2000:]}"
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    print("fuzz properties:", {k: v for k, v in figures.items() if k != "failures"})
    assert figures["tracebacks"] == 0 and figures["internal_errors"] == 0, figures["failures"]
    assert figures["rle_cases"] >= 150 and figures["coco_cases"] >= 150
    assert figures["rle_accepted"] > 0 and figures["coco_imported"] > 0  # the properties saw both outcomes
    assert figures["peak_rss_mb"] < PEAK_RSS_MB
    assert not (tmp_path / CANARY).exists()
