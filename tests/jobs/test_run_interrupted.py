"""Runs never stay "running": a real `studio predict` process is stopped with SIGTERM, SIGHUP and SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from studio.db import Project

FRAMES = 1500


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """A video with enough frames that Haar detection on all of them takes several seconds."""
    import cv2

    video = tmp_path_factory.mktemp("video") / "long.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    # a smooth pattern with some texture: quick to encode, and Haar still has to scan every window
    y, x = np.mgrid[0:240, 0:320]
    frame = np.dstack([(x * 7 + y * 3) % 256, (x * y) % 256, (x ^ y) % 256]).astype(np.uint8)
    for i in range(FRAMES):
        writer.write(np.roll(frame, i, axis=1))
    writer.release()
    return video


def _project_with(video: Path, tmp_path: Path) -> Path:
    from studio.io.media import add_paths

    root = tmp_path / "p"
    with Project.create(root) as project:
        add_paths(project, [video])
    return root


def _start_predict(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "studio", "predict", str(root), "--model", "opencv-haar", "--batch", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_until_predicting(root: Path, process: subprocess.Popen[str]) -> None:
    """Until the run exists, then a moment more, so the job is inside its loop."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        with Project.open(root) as project:
            if [run.status for run in project.runs()] == ["running"]:
                time.sleep(1.0)
                return
        time.sleep(0.2)
    raise AssertionError("predict never got going")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_predict_like_ctrl_c(long_video, tmp_path, signum):
    root = _project_with(long_video, tmp_path)
    process = _start_predict(root)
    _wait_until_predicting(root, process)
    process.send_signal(signum)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum
    assert err.strip().splitlines()[-1] == f"studio: error: interrupted ({signal.Signals(signum).name})"
    with Project.open(root) as project:
        (run,) = project.runs()
        assert run.status == "cancelled" and run.stats["partial"] is True
        assert 0 < run.stats["items"] < FRAMES


@pytest.mark.slow
def test_a_run_whose_process_was_killed_is_marked_interrupted_on_open(long_video, tmp_path):
    root = _project_with(long_video, tmp_path)
    process = _start_predict(root)
    _wait_until_predicting(root, process)
    # while the process lives, opening the project (above, repeatedly) leaves its run alone
    with Project.open(root) as project:
        assert project.runs()[0].status == "running"
    process.kill()
    process.wait(timeout=30)
    with Project.open(root) as project:
        (run,) = project.runs()
        assert run.status == "interrupted" and run.finished_at is not None


def test_runs_record_their_process_and_only_dead_ones_of_this_host_are_interrupted(project):
    import psutil

    from studio.db.schema import RunRow

    live = project.create_run("test")
    with project._session() as s:
        row = s.get(RunRow, live.id)
        assert (row.pid, row.host) == (os.getpid(), socket.gethostname())
        assert row.process_started == pytest.approx(psutil.Process().create_time())
    dead = project.create_run("test")
    reused_pid = project.create_run("test")  # this process's pid, but a process that started earlier
    elsewhere = project.create_run("test")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with project._session() as s:
        s.get(RunRow, dead.id).pid = child.pid
        s.get(RunRow, reused_pid.id).process_started -= 3600
        s.get(RunRow, elsewhere.id).host = "another-machine"
        s.get(RunRow, elsewhere.id).pid = child.pid
    assert sorted(project.mark_interrupted_runs()) == [dead.id, reused_pid.id]
    assert [run.status for run in project.runs()] == ["running", "interrupted", "interrupted", "running"]
