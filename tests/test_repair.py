"""``upsampcheck repair``: the minimum-norm tie of the phase sums against the formula and
``numpy.linalg.lstsq``, the repaired checkpoint written in its own layout (weight norm in
both forms), small models trained here losing their DC and silence lines, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from upsampcheck.repair import ties


def phase_matrix_np(length: int, stride: int) -> np.ndarray:
    """``A``: row ``r`` sums the taps ``k ≡ r (mod s)``, written out independently."""
    a = np.zeros((stride, length))
    for k in range(length):
        a[k % stride, k] = 1.0
    return a


def test_tie_is_the_least_squares_minimum_norm_correction_on_partial_overlap():
    """K = 5, s = 4 (n_0 = 2, the others 1): Δ equals lstsq's minimum-norm solution of
    A·Δ = mean(P) − P for every (in, out) pair, the sums end equal and their total is kept."""
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 2, 5, generator=gen, dtype=torch.float64)
    tied = ties.tie_transposed(weight, 4)
    a = phase_matrix_np(5, 4)
    for i in range(3):
        for o in range(2):
            w = weight[i, o].numpy()
            p = a @ w
            delta, *_ = np.linalg.lstsq(a, p.mean() - p, rcond=None)
            np.testing.assert_allclose(tied[i, o].numpy() - w, delta, rtol=0, atol=1e-14)
            after = a @ tied[i, o].numpy()
            np.testing.assert_allclose(after, np.full(4, p.mean()), rtol=0, atol=1e-14)
            assert abs(after.sum() - p.sum()) < 1e-13


@pytest.mark.parametrize(("length", "stride"), [(5, 4), (8, 4), (7, 3), (16, 8), (9, 2)])
def test_tied_kernel_has_no_line_for_any_pair_and_m(length, stride):
    """After the tie, W_m = Σ_r P_r e^{−2πi m r/s} is zero for 0 < m < s, for every pair, to
    below 1e-12 of the kernel's phase-sum scale (float64)."""
    gen = torch.Generator().manual_seed(length * 10 + stride)
    weight = torch.randn(4, 3, length, generator=gen, dtype=torch.float64)
    before = ties.phase_offsets(ties.phase_sums(weight, stride))
    after = ties.phase_offsets(ties.phase_sums(ties.tie_transposed(weight, stride), stride))
    scale = ties.phase_sums(weight, stride).abs().sum(-1, keepdim=True)
    assert (before[..., 1:].abs() / scale).max() > 1e-3
    assert (after[..., 1:].abs() / scale).max() < 1e-12
    torch.testing.assert_close(after[..., 0], before[..., 0], rtol=0, atol=1e-13)  # DC gain kept


def test_a_tied_kernel_is_left_unchanged_bit_for_bit():
    """Kernels whose phase sums are already equal come back identical, float32 and float64
    (the mean of equal sums would round; it is never taken for them)."""
    for dtype in (torch.float32, torch.float64):
        torch.manual_seed(1)
        x, y = torch.randn(2, 2, 3, 1, dtype=dtype)
        weight = torch.cat([x, y, x, y, y, x, y, x], -1)  # s = 4: every P_r = x + y exactly
        assert (ties.phase_sums(weight, 4) == ties.phase_sums(weight, 4)[..., :1]).all()
        tied = ties.tie_transposed(weight, 4)
        assert tied.dtype == dtype
        assert tied.numpy().tobytes() == weight.numpy().tobytes()
    ones = torch.ones(1, 1, 8)
    assert torch.equal(ties.tie_transposed(ones, 4), ones)


def test_a_phase_without_taps_is_refused():
    """K = 3 < s = 4: phase 3 holds no tap, its sum is 0 for good."""
    with pytest.raises(ties.Untieable, match="phase 3 of stride 4 holds no tap"):
        ties.tie_transposed(torch.randn(1, 1, 3), 4)


def test_subpixel_tie_equalises_every_phase_dc_gain_and_bias():
    """Subpixel (Conv1d(C_in, C·s, K) + shuffle): each sub-kernel's DC gain and each phase's
    bias end equal to their mean over phases; the change is the minimum-norm one."""
    torch.manual_seed(2)
    s, c, c_in, k = 3, 2, 2, 4
    weight = torch.randn(c * s, c_in, k, dtype=torch.float64)
    bias = torch.randn(c * s, dtype=torch.float64)
    tied, tied_bias = ties.tie_subpixel(weight, bias, s)
    sums = ties.subpixel_sums(tied, s)
    before = ties.subpixel_sums(weight, s)
    torch.testing.assert_close(sums, before.mean(-1, keepdim=True).expand_as(sums), rtol=0,
                               atol=1e-14)  # fmt: skip
    torch.testing.assert_close(tied_bias.view(c, s), bias.view(c, s).mean(-1, keepdim=True)
                               .expand(c, s), rtol=0, atol=1e-14)  # fmt: skip
    delta = (tied - weight).numpy()
    for ch in range(c * s):
        for i in range(c_in):
            target = before[ch // s, i].mean() - before[ch // s, i, ch % s]
            solution, *_ = np.linalg.lstsq(np.ones((1, k)), [float(target)], rcond=None)
            np.testing.assert_allclose(delta[ch, i], solution, rtol=0, atol=1e-14)
