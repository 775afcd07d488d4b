"""Write the README's generated file: a random-init HiFi-GAN-like vocoder (strides 8, 8, 2, 2
at 22050 Hz, hop 256, built in tests/generators.py) driven by the log-mel of 12 s of the
speech-like signal of tests/speechlike.py. Nothing is downloaded.

    python docs/generated_example.py hifigan_random.wav
"""

import sys
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from generators import generated  # noqa: E402
from speechlike import speech  # noqa: E402

FS = 22050
out = generated(speech(FS, 12, seed=5), FS)
sf.write(sys.argv[1] if len(sys.argv) > 1 else "hifigan_random.wav", out, FS, subtype="PCM_16")
