"""engine.errors: every error the engine raises on purpose is an EngineError (the one class the
CLI and the add-on catch and show as one line); an InputError is also a ValueError."""
from __future__ import annotations

import pytest

from engine.errors import CancelledError, EngineError, InputError, ModelNotFoundError


@pytest.mark.parametrize("cls", [InputError, ModelNotFoundError, CancelledError])
def test_every_engine_error_is_caught_as_engine_error(cls):
    with pytest.raises(EngineError, match="depth 'x.exr': contains NaN"):
        raise cls("depth 'x.exr': contains NaN")


def test_input_error_is_a_value_error_and_the_others_are_not():
    assert issubclass(InputError, ValueError)
    assert not issubclass(ModelNotFoundError, ValueError) and not issubclass(CancelledError, ValueError)
    assert not issubclass(EngineError, ValueError)  # a bare ValueError is a bug, not an input error
