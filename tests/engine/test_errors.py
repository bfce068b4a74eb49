"""engine.errors: every error the engine raises on purpose is an EngineError (the one class the
CLI and the add-on catch and show as one line); an InputError is also a ValueError."""
from __future__ import annotations

import pytest

from engine.errors import CancelledError, EngineError, InputError, ModelNotFoundError


@pytest.mark.parametrize("cls, code", [(InputError, 2), (ModelNotFoundError, 2), (CancelledError, 1)])
def test_the_command_line_shows_every_engine_error_as_one_line(cls, code, capsys):
    """The boundary catches each as an EngineError: one ``error:`` line, its exit code, no traceback."""
    from engine.cli import report_error

    assert issubclass(cls, EngineError)
    assert report_error(cls("depth 'x.exr': contains NaN\nin 3 pixels"), verbose=False) == code
    assert capsys.readouterr().err == "error: depth 'x.exr': contains NaN in 3 pixels\n"


def test_input_error_is_a_value_error_and_the_others_are_not():
    assert issubclass(InputError, ValueError)
    assert not issubclass(ModelNotFoundError, ValueError) and not issubclass(CancelledError, ValueError)
    assert not issubclass(EngineError, ValueError)  # a bare ValueError is a bug, not an input error
