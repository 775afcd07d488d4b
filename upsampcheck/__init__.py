"""upsampcheck: diagnose upsampling artifacts in neural audio models."""

__version__ = "0.1.0"
