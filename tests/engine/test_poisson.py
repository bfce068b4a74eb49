"""engine.poisson against analytic solutions."""
import numpy as np
import pytest

from engine.poisson import laplace_fill, poisson_blend, solve_poisson


def grid(h=30, w=40):
    y, x = np.mgrid[0:h, 0:w].astype(float)
    return x, y


def blob(h=30, w=40):
    x, y = grid(h, w)
    r = ((x - 18) / 12) ** 2 + ((y - 14) / 9) ** 2 < 1
    r[8:12, 25:34] = True  # a non-convex part
    return r


@pytest.mark.parametrize("f", [
    lambda x, y: 2.0 * x - 3.0 * y + 5.0,   # linear ramp
    lambda x, y: x ** 2 - y ** 2,           # harmonic (the 5-point Laplacian is exactly zero)
    lambda x, y: x * y + 0.5 * x,           # harmonic
])
def test_laplace_fill_reproduces_harmonic_functions(f):
    x, y = grid()
    truth = f(x, y)
    region = blob()
    given = np.where(region, 0.0, truth)
    np.testing.assert_allclose(laplace_fill(given, region), truth, atol=1e-8)


def test_poisson_blend_adds_the_harmonic_correction():
    x, y = grid()
    source = np.sin(x / 4.0) * np.cos(y / 3.0) + 0.1 * x * x
    harmonic = x ** 2 - y ** 2 + 3 * x
    region = blob()
    out = poisson_blend(source, source + harmonic, region)
    np.testing.assert_allclose(out, source + harmonic, atol=1e-7)


def test_given_guidance_is_integrated_exactly():
    x, y = grid()
    f = np.exp(x / 20.0) + y ** 3 / 100
    region = blob()
    out = solve_poisson(np.where(region, -1.0, f), region, np.diff(f, axis=1), np.diff(f, axis=0))
    np.testing.assert_allclose(out, f, atol=1e-8)


def test_region_touching_the_border_uses_neumann_and_unanchored_fails():
    x, y = grid(10, 10)
    region = np.zeros((10, 10), bool)
    region[:, :4] = True  # touches three borders; boundary only on the right
    vals = np.where(region, 0.0, 7.0)
    np.testing.assert_allclose(laplace_fill(vals, region), 7.0)
    with pytest.raises(ValueError):
        laplace_fill(vals, np.ones((10, 10), bool))


def test_channels_are_solved_like_separate_maps():
    rng = np.random.default_rng(3)
    values = rng.random((20, 24, 3))
    region = np.zeros((20, 24), bool)
    region[4:15, 5:19] = True
    together = laplace_fill(values, region)
    assert together.shape == (20, 24, 3)
    for c in range(3):
        np.testing.assert_allclose(together[..., c], laplace_fill(values[..., c], region), atol=1e-12)
