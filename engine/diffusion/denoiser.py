"""The UNet as the method calls it: depth channel concatenated, classifier-free guidance, and a
count of every forward and backward evaluation (per image in the batch)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .hooks import ActivationRecorder


@dataclass
class EvalCounter:
    forward: int = 0
    backward: int = 0

    def as_dict(self):
        return {"unet_forward": self.forward, "unet_backward": self.backward}


class Denoiser:
    def __init__(self, unet, layers, device, dtype):
        self.unet = unet
        self.device, self.dtype = device, dtype
        self.recorder = ActivationRecorder(unet, layers)
        self.count = EvalCounter()

    def _unet(self, latents, t, text, depth):
        x = __import__("torch").cat([latents, depth.to(latents.dtype)], dim=1)
        self.count.forward += latents.shape[0]
        return self.unet(x, t, encoder_hidden_states=text, return_dict=False)[0]

    def eps(self, latents, t, text, depth):
        """Noise prediction (B, C, h, w); text (B or 1, L, D), depth (B or 1, 1, h, w)."""
        B = latents.shape[0]
        return self._unet(latents, t, _expand(text, B), _expand(depth, B))

    def cfg_eps(self, latents, t, cond, null, depth, scale: float):
        """Classifier-free guided noise: null + scale * (cond - null). One batched call of 2B.

        Where the null embedding IS the prompt embedding (negative-prompt inversion) the guided
        noise equals the conditional one, and one forward of B does."""
        import torch

        B = latents.shape[0]
        if null is cond or (null.shape == cond.shape and torch.equal(null, cond)):
            return self.eps(latents, t, cond, depth)
        x = torch.cat([latents, latents])
        text = torch.cat([_expand(null, B), _expand(cond, B)])
        d = _expand(depth, B)
        e_null, e_cond = self._unet(x, t, text, torch.cat([d, d])).chunk(2)
        return e_null + scale * (e_cond - e_null)

    def activations(self, latents, t, cond, depth, layers, stop_early=True):
        """Conditional-only forward; returns {layer: (B, C, h, w)} (and keeps the graph)."""
        with self.recorder.capture(layers, stop_early=stop_early) as acts:
            self.recorder.run(lambda: self.eps(latents, t, cond, depth))
        return dict(acts)

    def remove(self):
        self.recorder.remove()


def _expand(x, B):
    return x if x.shape[0] == B else x.expand(B, *x.shape[1:])
