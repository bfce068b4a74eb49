"""The UNet as the method calls it: depth fed the backbone's way (``backbones.Feed``: SD2's fifth
channel or a ControlNet's residuals), classifier-free guidance, and a count of every UNet forward
and backward evaluation (per image in the batch; a ControlNet's forward goes with its UNet's).

Precision: the UNet runs in the model's dtype (fp16/bf16 on a GPU); latents, noise predictions,
the guidance energy and its gradient stay in fp32. The energy's gradient flows back through a
half-precision UNet, so `energy_grad` scales the energy up before the backward pass (as mixed-
precision training does) and checks the result: no silent underflow, no NaN step."""
from __future__ import annotations

from dataclasses import dataclass

from .hooks import ActivationRecorder


@dataclass
class EvalCounter:
    forward: int = 0
    backward: int = 0

    def as_dict(self):
        return {"unet_forward": self.forward, "unet_backward": self.backward}


FP16_LOSS_SCALE = 2.0 ** 12


class Denoiser:
    def __init__(self, unet, layers, device, dtype, feed=None):
        """``feed``: a ``backbones.Feed`` (default: SD2-depth's concatenated depth channel)."""
        from .backbones import Feed

        self.unet = unet
        self.device, self.dtype = device, dtype
        self.feed = feed or Feed()
        self.recorder = ActivationRecorder(unet, layers, blocks=self.feed.spec.up_blocks(layers))
        self.count = EvalCounter()

    def _unet(self, latents, t, text, depth):
        self.count.forward += latents.shape[0]
        out = self.feed(self.unet, latents, t, text, depth, self.dtype)
        return None if out is None else out[0].float()

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

    def activations_and_eps(self, latents, t, cond, depth, layers):
        """A whole conditional-only forward: ({layer: (B, C, h, w)} with the graph, the noise
        prediction (B, C, h, w) detached)."""
        with self.recorder.capture(layers, stop_early=False) as acts:
            eps = self.eps(latents, t, cond, depth)
        return dict(acts), eps.detach()

    def energy_grad(self, energy, latents):
        """d(energy.sum()) / d(latents) in fp32. In half precision the energy is multiplied by a
        loss scale first (FP16_LOSS_SCALE for fp16, whose gradients would otherwise underflow; 1 for bf16 and
        fp32, which have fp32's range); an inf/NaN gradient halves the scale and tries again."""
        import torch

        scale = FP16_LOSS_SCALE if self.dtype == torch.float16 else 1.0
        while True:
            (grad,) = torch.autograd.grad(energy.sum() * scale, latents, retain_graph=scale > 1.0)
            self.count.backward += latents.shape[0]
            grad = grad.float() / scale
            if torch.isfinite(grad).all():
                return grad
            if scale <= 1.0:
                raise FloatingPointError("the guidance gradient is not finite (inf or NaN) at loss "
                                         "scale 1: run in fp32 or bf16")
            scale /= 2.0 ** 4

    def remove(self):
        self.recorder.remove()


def _expand(x, B):
    return x if x.shape[0] == B else x.expand(B, *x.shape[1:])
