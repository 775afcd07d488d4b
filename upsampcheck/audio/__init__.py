"""``upsampcheck audio``: find the upsampling grid in audio a model actually produced.

* :mod:`.analyse`: one file, two streamed passes (spectra and phase coherence);
* :mod:`.lines`: the lines locked to the sample clock, and the spectral peaks that are not;
* :mod:`.results`: what is measured (plain data);
* :mod:`.check`: every file of one call, one :class:`~upsampcheck.report.audio.AudioReport`.

The measurements are in :mod:`upsampcheck.measure` (``coherence``, ``longterm``,
``stationary``, ``grid``), the findings and ``report.json`` in :mod:`upsampcheck.report.audio`,
which imports nothing from here but the plain data of :mod:`.results`.
"""
