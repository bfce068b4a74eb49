"""engine.console: one line per stage when not on a terminal, nothing with quiet."""
from engine import console


def test_one_line_per_stage_off_a_terminal(capsys):
    console.configure(quiet=False)
    with console.Progress() as progress:
        for stage in ("invert", "reconstruct"):
            for step in range(1, 5):
                progress(stage, step, 4)
        for step in range(1, 9):  # the edit reports over all its batches
            progress("edit", step, 8)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["DDIM inversion", "reconstruction", "guided sampling"]
    assert lines[-1].startswith("guided sampling: 8/8 steps")


def test_quiet_prints_nothing(capsys):
    console.configure(quiet=True)
    try:
        with console.Progress() as progress:
            progress("invert", 1, 1)
        console.say("hello")
    finally:
        console.configure(quiet=False)
    assert capsys.readouterr().out == ""


def test_an_interrupted_stage_prints_no_finished_line(capsys):
    console.configure(quiet=False)
    try:
        with console.Progress() as progress:
            progress("edit", 1, 8)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert capsys.readouterr().out == ""
