"""sampler.local_background_keep: the reconstruction is kept far from the edit, never on it."""
from types import SimpleNamespace

import numpy as np

from engine.diffusion.sampler import local_background_keep


def test_keep_is_zero_where_the_edit_may_change_and_one_far_away():
    obj = np.zeros((64, 64), bool)
    obj[20:30, 10:20] = True
    target = np.roll(obj, 20, axis=1)
    geo = SimpleNamespace(target_mask=target, valid_mask=~obj | target)
    keep = local_background_keep(obj, [geo, geo], (32, 32), margin=0.1)
    assert keep.shape == (2, 1, 32, 32)
    k = keep[0, 0]
    touched = (obj | target).reshape(32, 2, 32, 2).any(axis=(1, 3))
    assert (k[touched] == 0).all()
    from scipy import ndimage

    d = ndimage.distance_transform_edt(~touched)
    assert (k[d <= 0.1 * 32] == 0).all()  # the margin around it is free too (shadows)
    assert (k[d >= 0.1 * 32 + 2] == 1).all()  # far away: the reconstruction
    ramp = k[(d > 0.1 * 32) & (d < 0.1 * 32 + 2)]
    assert ((ramp > 0) & (ramp < 1)).any()  # feathered, no hard seam
