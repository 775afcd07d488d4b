"""The probe and DFT building blocks: the sweep against scipy, the multitone's design rules."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.signal import chirp

from upsampcheck.measure.attribution import image_of
from upsampcheck.measure.multitone import design_multitone, excited_bins, min_period
from upsampcheck.measure.periodic import bin_power, driven_bins, fold
from upsampcheck.measure.probes import exponential_sweep

try:
    from oracles import images
except ImportError:  # tests/ run as a package
    from tests.oracles import images


def test_the_sweep_follows_scipy_s_logarithmic_chirp():
    t = torch.arange(8000, dtype=torch.float64) / 4000
    ours = exponential_sweep(t, 4.0, 1900.0).numpy()
    theirs = chirp(t.numpy(), f0=4.0, t1=float(t[-1]), f1=1900.0, method="logarithmic")
    assert np.abs(ours - theirs).max() < 1e-9


def test_the_multitone_has_the_probe_rms_exactly_and_flat_bins_on_its_own_channel_only():
    mt = design_multitone(512, 3, seed=4, level=0.1)
    x = mt.signal(3 * 512)
    assert torch.allclose(
        x.pow(2).mean(-1).sqrt(), torch.full((3,), 0.1, dtype=torch.float64), atol=1e-15
    )
    assert torch.equal(x[:, :512], x[:, 512:1024])  # periodic from the first sample
    power = bin_power(torch.fft.rfft(x[:, :512]), 512).numpy()
    for c in range(3):
        mine = mt.bins[c]
        assert np.allclose(power[c, mine], mt.amplitudes[c] ** 2 / 2, rtol=1e-12)
        others = np.setdiff1d(np.arange(257), mine)
        assert power[c, others].max() < 1e-30  # nothing anywhere else: no cross terms
    assert set(np.concatenate(mt.bins).tolist()) == set(excited_bins(512).tolist())


def test_no_excited_bin_or_image_lands_on_or_next_to_a_grid_bin():
    period = 256
    k = excited_bins(period)
    assert (k % 2 == 1).all() and k.min() == 3 and k.max() == period // 2 - 3
    for factor in (2, 3, 5, 7, 10, 64):
        q, _ = driven_bins(period * factor, period, 1)
        distance = np.abs(q - period * np.rint(q / period))
        assert distance.min() == 3  # two free guard bins each side of every grid bin


def test_the_period_gives_every_channel_group_bins_in_the_reference_band():
    assert [min_period(g) for g in (1, 2, 4, 8)] == [256, 256, 512, 1024]


def test_folding_whole_periods_keeps_the_periodic_part_exactly():
    x = torch.arange(12, dtype=torch.float64).reshape(1, 12) % 4
    assert torch.equal(fold(x, 4), torch.tensor([[0.0, 1.0, 2.0, 3.0]]))


@given(
    fs_in=st.sampled_from([75.0, 600.0, 22050 / 256, 3000.0, 11025.0]),
    factor=st.sampled_from([2, 3, 4, 5, 8]),
    tol_share=st.sampled_from([1e-6, 0.01, 0.1, 0.45]),
    sources=st.lists(st.floats(0.0, 1.5), min_size=1, max_size=5),
    outputs=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8),
    near=st.floats(-2.0, 2.0),
)
def test_the_vectorised_image_test_agrees_with_the_image_list(
    fs_in, factor, tol_share, sources, outputs, near
):
    """An output frequency is an image of a source exactly when it is within the tolerance of
    one of :func:`images`: the matrix form tries only the two nearest multiples of fs_in."""
    tol = tol_share * fs_in
    src = np.array(sources) * fs_in
    exact = [k * fs_in + sign * f for k in range(factor + 1) for f in src for sign in (-1, 1)]
    out = np.array(
        [o * factor * fs_in / 2 for o in outputs] + [abs(x) + near * tol for x in exact[:6]]
    )
    expected = [
        [any(abs(i - o) <= tol for i in images(f, fs_in, factor)) for f in src] for o in out
    ]
    assert image_of(out, src, fs_in, factor, tol).tolist() == expected
