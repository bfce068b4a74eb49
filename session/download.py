"""Model downloads through the model registry (engine/registry.py), the one download path: the
default pipeline's roles, byte progress reported to a job, stopped when the job is cancelled. No bpy."""
from __future__ import annotations

import os

CANCELLED = "download cancelled; finished files stay in the cache, run it again for the rest"


def download_plan(overrides):
    """(role to fetch, Hugging Face id or None for the role's default) for each role of the default
    pipeline: a local folder or file override needs nothing, an alias role (``sam-vit-h``) is fetched as itself."""
    from ..engine import registry

    plan = []
    for role, spec in registry.REGISTRY.items():
        if spec.use != "default":
            continue
        override = overrides.get(role)
        if override and os.path.exists(override):  # a folder, or a checkpoint file (Model file)
            continue
        if override in registry.REGISTRY:
            plan.append((override, None))
        else:
            plan.append((role, override or None))
    return plan


def progress_tqdm(progress, should_cancel, label):
    """A tqdm class for registry.download that reports bytes to a job's progress and stops the
    download when the job is cancelled (files already finished stay in the cache)."""
    from tqdm.auto import tqdm

    from ..engine.errors import CancelledError

    class JobTqdm(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = False
            kwargs.setdefault("file", _Null())
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if should_cancel():
                raise CancelledError(CANCELLED)
            result = super().update(n)
            if self.unit == "B" and self.total:
                progress(f"{label}: {self.format_sizeof(self.n)}B of {self.format_sizeof(self.total)}B",
                         min(self.n, self.total), self.total)
            return result

    return JobTqdm


class _Null:
    def write(self, text):
        pass

    def flush(self):
        pass


def download_models(plan, progress, should_cancel, notify=None):
    """Fetch each (role, override) of ``plan`` with ``registry.download``; returns the roles done.
    ``notify`` gets the registry's one-line notes (a withdrawn source passed over, a file refused
    and fetched again). Raises CancelledError between roles, or inside a transfer, when
    ``should_cancel()``; when no source of a role serves, the registry's one message
    (SourcesFailedError)."""
    from ..engine import registry
    from ..engine.errors import CancelledError

    done = []
    for index, (role, override) in enumerate(plan):
        if should_cancel():
            raise CancelledError(CANCELLED)
        label = f"{role} ({index + 1}/{len(plan)})"
        progress(label, 0, 1)
        try:
            registry.download(role, override, tqdm_class=progress_tqdm(progress, should_cancel, label),
                              notify=notify)
        except Exception as exc:
            if isinstance(exc.__cause__, CancelledError):  # registry.download wraps every error
                raise exc.__cause__ from None
            raise
        done.append(role)
    return done
