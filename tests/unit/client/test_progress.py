"""The bulk progress display: a redrawn bar on a terminal, a short plain log elsewhere."""

from __future__ import annotations

import io

from kerasserve_client import ImageOutcome, Progress
from kerasserve_client._progress import ProgressDisplay, status

OUTCOME = ImageOutcome(0, b"")


def progress(done: int, total: int | None, failed: int = 0, elapsed: float = 10.0) -> Progress:
    return Progress(done, failed, total, elapsed, OUTCOME)


def test_status_says_counts_rate_and_time_left():
    assert status(progress(12, 40, failed=1, elapsed=4.0)) == (
        "12/40 images (30%), 1 failed, 3.0 images/s, 9 s left"
    )
    assert status(progress(40, 40, elapsed=8.0)) == "40/40 images (100%), 5.0 images/s"
    assert status(progress(250, None, elapsed=100.0)) == "250 images, 2.5 images/s"
    assert (
        status(progress(1, 5000, elapsed=1.0)) == "1/5000 images (0%), 1.0 images/s, 1:23:19 left"
    )


def test_plain_output_writes_a_line_at_each_tenth():
    stream = io.StringIO()
    display = ProgressDisplay(stream, tty=False)

    for done in range(1, 41):
        display(progress(done, 40))
    display.close()

    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == [f"{n}/40" for n in range(4, 41, 4)]
    assert "\r" not in stream.getvalue()


def test_plain_output_of_an_unknown_total_writes_every_hundred():
    stream = io.StringIO()
    display = ProgressDisplay(stream, tty=False)

    for done in range(1, 251):
        display(progress(done, None))

    assert [line.split()[0] for line in stream.getvalue().splitlines()] == ["100", "200"]


def test_a_terminal_bar_is_redrawn_at_most_ten_times_a_second_and_ends_its_line():
    stream = io.StringIO()
    now = [0.0]
    display = ProgressDisplay(stream, tty=True, clock=lambda: now[0])

    for done in range(1, 21):
        now[0] += 0.02  # 50 images a second
        display(progress(done, 20))
    display.close()

    frames = stream.getvalue().split("\r\x1b[K")[1:]
    assert 4 <= len(frames) <= 6  # 0.4 s of work: a frame per 0.1 s, plus the last
    assert frames[-1].startswith("[" + "#" * 10)
    assert "20/20 images (100%)" in frames[-1]
    assert stream.getvalue().endswith("\n")


def test_close_without_drawing_writes_nothing():
    stream = io.StringIO()

    ProgressDisplay(stream, tty=True).close()

    assert stream.getvalue() == ""
