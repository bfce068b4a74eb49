"""Decoder activations via forward hooks on an unmodified diffusers UNet.

``ActivationRecorder`` registers a forward hook on each guided ``unet.up_blocks[i]``; while a
capture is open it keeps the block's output (with its autograd graph, so the guidance energy can
be differentiated). When only early layers are wanted it can stop the forward pass right after
the last of them (the later blocks would be computed for nothing): the UNet's output is then not
available, which is fine for the guidance's activation-only forwards.

``writing`` is the other direction (the gradient-free handles): hooks that REPLACE block outputs,
registered for one forward and removed right after it.
"""
from __future__ import annotations

from contextlib import contextmanager


class _StopForward(Exception):
    pass


class ActivationRecorder:
    def __init__(self, unet, layers=(2, 3), blocks=None):
        """``blocks``: {layer: up_blocks index} where a backbone numbers them otherwise (SDXL)."""
        self.unet = unet
        self.layers = tuple(layers)
        self._wanted: tuple = ()
        self._stop_after = None
        self.captured: dict = {}
        self._handles = [unet.up_blocks[(blocks or {}).get(i, i)].register_forward_hook(self._hook(i))
                         for i in self.layers]

    def _hook(self, index):
        def hook(module, args, output):
            if index in self._wanted:
                self.captured[index] = output[0] if isinstance(output, tuple) else output
            if self._stop_after is not None and index == self._stop_after:
                raise _StopForward()
        return hook

    @contextmanager
    def capture(self, layers, stop_early: bool = False):
        """Within the context, forwards record the outputs of ``layers`` into ``self.captured``.

        With ``stop_early`` the forward ends after the last wanted block (use ``run``)."""
        bad = [l for l in layers if l not in self.layers]
        if bad:
            raise ValueError(f"layers {bad} are not hooked (hooked: {self.layers})")
        self._wanted = tuple(layers)
        self._stop_after = max(layers) if stop_early and layers else None
        self.captured = {}
        try:
            yield self.captured
        finally:
            self._wanted = ()
            self._stop_after = None
            self.captured = {}  # the caller keeps the yielded dict; nothing else holds the graph

    @staticmethod
    def run(fn):
        """Call ``fn()``; a forward stopped early returns None instead of raising."""
        try:
            return fn()
        except _StopForward:
            return None

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles = []


@contextmanager
def writing(unet, written: dict):
    """Within the context, the output of each ``unet.up_blocks[i]`` is replaced by
    ``written[i](output)`` (the gradient-free handles: `Guidance.writers`). The hooks exist only
    inside the context: they are removed on the way out, also when the forward raises, so later
    forwards are untouched."""

    def hook_for(fn):
        def hook(module, args, output):
            if isinstance(output, tuple):
                return (fn(output[0]),) + tuple(output[1:])
            return fn(output)
        return hook

    handles = [unet.up_blocks[i].register_forward_hook(hook_for(fn)) for i, fn in written.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
