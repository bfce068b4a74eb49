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
    """A model role could not be loaded from disk (which role, which id, where we looked, how to fix)."""


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
