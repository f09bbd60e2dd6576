"""``stanet_rt.progress``: the one progress display. Bars go to stderr and vanish (stdout stays clean),
a disabled bar shows nothing and still yields every item, notes are printed either way."""

from __future__ import annotations

from stanet_rt.progress import ProgressBar, track


def test_track_yields_every_item_and_writes_nothing_to_stdout(capsys) -> None:
    assert list(track(range(5), "work")) == [0, 1, 2, 3, 4]
    assert list(track((i for i in range(3)), "no len")) == [0, 1, 2]
    assert capsys.readouterr().out == ""


def test_disabled_bar_is_silent_but_notes_reach_stderr(capsys) -> None:
    assert list(track([1, 2], "quiet", enabled=False)) == [1, 2]
    with ProgressBar(3, "quiet", enabled=False) as bar:
        bar.advance(status="loss=0.5")
        bar.note("error: clip.mp4: no audio track")
    out = capsys.readouterr()
    assert out.out == "" and out.err == "error: clip.mp4: no audio track\n"


def test_bar_counts_and_shows_the_status() -> None:
    with ProgressBar(4, "epoch 1/2") as bar:
        bar.advance(2, status="loss=0.1234")
        task = bar._bar.tasks[0]
        assert task.completed == 2 and task.total == 4 and task.description == "epoch 1/2 loss=0.1234"
    assert bar._bar is None  # closed on exit
