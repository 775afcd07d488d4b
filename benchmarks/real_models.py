"""Builders of the real architectures :mod:`bench_real_models` measures, at random init.

Each is an ``--arch`` target (``real_models:bigvgan_base_22k``) and needs its package, a
benchmark extra (``pip install -e '.[bench]'``), never a runtime dependency. Nothing is
downloaded: every model is built from its code with the published configuration.
"""

from __future__ import annotations

from torch import nn


def bigvgan_base_22k() -> nn.Module:
    """NVIDIA BigVGAN base, 22.05 kHz, 80 mel bands: ConvTranspose1d x8, x8, x2, x2, and an
    anti-aliased Snake activation (x2 Kaiser-sinc up, /2 down) in every residual layer."""
    from bigvgan.bigvgan import BigVGAN
    from bigvgan.env import AttrDict

    config = AttrDict(
        num_mels=80,
        upsample_rates=[8, 8, 2, 2],
        upsample_kernel_sizes=[16, 16, 4, 4],
        upsample_initial_channel=512,
        resblock="1",
        resblock_kernel_sizes=[3, 7, 11],
        resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        activation="snakebeta",
        snake_logscale=True,
        sampling_rate=22050,
    )
    return BigVGAN(config, use_cuda_kernel=False)


def dac_44k_decoder() -> nn.Module:
    """Descript Audio Codec 44.1 kHz decoder: a 1024-wide latent, rates 8, 8, 4, 2."""
    from dac.model.dac import Decoder

    return Decoder(input_channel=1024, channels=1536, rates=[8, 8, 4, 2])


def encodec_24k_decoder() -> nn.Module:
    """Meta EnCodec 24 kHz SEANet decoder: a 128-wide latent, ratios 8, 5, 4, 2."""
    from encodec.modules import SEANetDecoder

    return SEANetDecoder(dimension=128, n_filters=32, ratios=[8, 5, 4, 2])


def speechbrain_hifigan() -> nn.Module:
    """SpeechBrain HiFi-GAN V1 generator, 80 mels in, upsampling 8, 8, 2, 2."""
    from speechbrain.lobes.models.HifiGAN import HifiganGenerator

    return HifiganGenerator(
        in_channels=80,
        out_channels=1,
        resblock_type="1",
        resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        resblock_kernel_sizes=[3, 7, 11],
        upsample_kernel_sizes=[16, 16, 4, 4],
        upsample_initial_channel=512,
        upsample_factors=[8, 8, 2, 2],
    )


def demucs_700m() -> nn.Module:
    """Demucs v2 at the talk's scale: four sources, 146 channels (about 700 M parameters)."""
    from demucs.demucs import Demucs

    return Demucs(sources=["drums", "bass", "other", "vocals"], channels=146)


# -- the survey's other architectures (benchmarks/survey_models.py) ------------------------


def demucs_v2() -> nn.Module:
    """Demucs v2 at its published size (64 channels, four sources)."""
    from demucs.demucs import Demucs

    return Demucs(sources=["drums", "bass", "other", "vocals"])


def hdemucs() -> nn.Module:
    """Hybrid Demucs (v3), four sources."""
    from demucs.hdemucs import HDemucs

    return HDemucs(sources=["drums", "bass", "other", "vocals"])


def htdemucs() -> nn.Module:
    """Hybrid Transformer Demucs (v4), four sources."""
    from demucs.htdemucs import HTDemucs

    return HTDemucs(sources=["drums", "bass", "other", "vocals"])


def dac_44k() -> nn.Module:
    """The whole Descript Audio Codec at 44.1 kHz: encoder, quantizer, decoder."""
    from dac.model.dac import DAC

    return DAC()


def encodec_24k() -> nn.Module:
    """The whole EnCodec 24 kHz model (random init, nothing downloaded)."""
    from encodec import EncodecModel

    return EncodecModel.encodec_model_24khz(pretrained=False)


def snac_24k() -> nn.Module:
    """SNAC's 24 kHz codec at its default configuration."""
    from snac import SNAC

    return SNAC(sampling_rate=24000)


def vocos_mel() -> nn.Module:
    """Vocos (mel, 100 bands, 24 kHz): a ConvNeXt backbone and an ISTFT head; ``--method
    decode`` runs it from a mel spectrogram."""
    from vocos import Vocos
    from vocos.feature_extractors import MelSpectrogramFeatures
    from vocos.heads import ISTFTHead
    from vocos.models import VocosBackbone

    return Vocos(
        MelSpectrogramFeatures(sample_rate=24000, n_fft=1024, hop_length=256, n_mels=100),
        VocosBackbone(input_channels=100, dim=512, intermediate_dim=1536, num_layers=8),
        ISTFTHead(dim=512, n_fft=1024, hop_length=256),
    )


def alias_free_upsampler() -> nn.Module:
    """alias-free-torch's ``UpSample1d`` x2 after a conv: the Kaiser-sinc upsampler BigVGAN
    took."""
    from alias_free_torch import UpSample1d
    from torch import nn as torch_nn

    return torch_nn.Sequential(torch_nn.Conv1d(1, 4, 7, padding=3), UpSample1d(2))


def conv_tasnet() -> nn.Module:
    """torchaudio's Conv-TasNet (base: 512 filters of 16 taps, stride 8), two sources."""
    from torchaudio.models import conv_tasnet_base

    return conv_tasnet_base(num_sources=2)


def hdemucs_torchaudio() -> nn.Module:
    """torchaudio's Hybrid Demucs (low), four sources."""
    from torchaudio.models import hdemucs_low

    return hdemucs_low(sources=["drums", "bass", "other", "vocals"])


# -- kan-bayashi/ParallelWaveGAN's generators, wrapped as their users run them --------------


def _parallel_wavegan():
    """The ``parallel_wavegan.models`` package (scipy >= 1.13 moved ``kaiser`` to
    ``scipy.signal.windows``; the project still imports it from ``scipy.signal``)."""
    import scipy.signal
    import scipy.signal.windows

    if not hasattr(scipy.signal, "kaiser"):
        scipy.signal.kaiser = scipy.signal.windows.kaiser
    import parallel_wavegan.models as models

    return models


def parallel_wavegan_zero() -> nn.Module:
    """ParallelWaveGAN (hop 256, aux context window 2) with ``z = 0``: the part of the output
    the mel decides."""
    import torch

    models = _parallel_wavegan()

    class ZeroNoise(models.ParallelWaveGANGenerator):
        def forward(self, c: torch.Tensor) -> torch.Tensor:
            frames = c.shape[-1] - 2 * self.aux_context_window
            z = c.new_zeros(c.shape[0], 1, frames * int(self.upsample_factor))
            return super().forward(z, c)

    return ZeroNoise()


def style_melgan_zero() -> nn.Module:
    """StyleMelGAN (noise x11 x2 x2 x2, eight TADE blocks x2) with ``z = 0``, one noise frame
    per 88 mel frames, as its ``inference`` sizes it."""
    import torch

    models = _parallel_wavegan()

    class ZeroNoise(models.StyleMelGANGenerator):
        def forward(self, c: torch.Tensor) -> torch.Tensor:
            frames = (c.shape[-1] - 1) // int(self.noise_upsample_factor) + 1
            return super().forward(c, c.new_zeros(c.shape[0], self.in_channels, frames))

    return ZeroNoise()


def melgan() -> nn.Module:
    """MelGAN (upsampling 8, 8, 2, 2), the project's default configuration."""
    return _parallel_wavegan().MelGANGenerator()


def multiband_melgan() -> nn.Module:
    """Multi-band MelGAN: a MelGAN generator (8, 4, 2) making 4 bands, then the PQMF synthesis
    bank (zero stuffing x4 and a 63-tap filter) that the project runs after it."""
    import torch

    models = _parallel_wavegan()
    from parallel_wavegan.layers import PQMF

    class MultiBand(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.generator = models.MelGANGenerator(
                out_channels=4, channels=384, upsample_scales=[8, 4, 2], stacks=4
            )
            self.pqmf = PQMF(subbands=4)

        def forward(self, c: torch.Tensor) -> torch.Tensor:
            return self.pqmf.synthesis(self.generator(c))

    return MultiBand()


def hifigan_kan_bayashi() -> nn.Module:
    """kan-bayashi's HiFi-GAN generator (upsampling 8, 8, 2, 2)."""
    return _parallel_wavegan().HiFiGANGenerator()


def dcunet() -> nn.Module:
    """asteroid's DCUNet-10: an STFT encoder (1024-point), a complex U-Net, an inverse STFT."""
    from asteroid.models import DCUNet

    return DCUNet("DCUNet-10")


def mimi_decode_path() -> nn.Module:
    """Kyutai's Mimi codec (moshi), decoding from its 512-wide latent at 12.5 Hz: the x2
    upsampler to the encoder's frame rate, the decoder transformer, the SEANet decoder."""
    import torch
    from moshi.models import loaders

    class DecodePath(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mimi = loaders.get_mimi(None)

        def forward(self, latent: torch.Tensor) -> torch.Tensor:
            emb = self.mimi._to_encoder_framerate(latent)
            if self.mimi.decoder_transformer is not None:
                (emb,) = self.mimi.decoder_transformer(emb)
            return self.mimi.decoder(emb)

    return DecodePath()
