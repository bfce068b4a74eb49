"""Exceptions the engine raises on purpose.

Every boundary (CLI, add-on operators) catches `EngineError` and shows its message as one line;
anything else is a bug and keeps its traceback.
"""


class EngineError(Exception):
    """Base class: the message is meant for the user, one line, naming what is wrong."""


class InputError(EngineError, ValueError):
    """A user-supplied input (file, prompt, transform, setting) is invalid.

    The message names the input (e.g. ``depth 'scene/depth.exr': contains NaN``).
    """


class ModelNotFoundError(EngineError):
    """A model role could not be loaded from disk (which role, which id, where we looked).

    ``role`` (and ``override``, the id asked for) are set when the weights are simply not on disk:
    each front end then says how its own user fetches them (the command line its ``models
    download`` command, the add-on its Download Models button)."""

    def __init__(self, message, role=None, override=None):
        super().__init__(message)
        self.role = role
        self.override = override


def model_load_errors() -> tuple:
    """What the libraries' ``from_pretrained`` raise for a model folder they cannot load: missing or
    unreadable files, bad configs, corrupt weights (safetensors' own SafetensorError). The loaders
    turn these into one ModelNotFoundError naming the folder; anything else stays a bug."""
    from safetensors import SafetensorError

    return (OSError, ValueError, KeyError, SafetensorError)


class CancelledError(EngineError):
    """The caller asked to stop (progress callback returned False or a cancel flag was set).

    Raised between steps; nothing half-written is left behind.
    """
