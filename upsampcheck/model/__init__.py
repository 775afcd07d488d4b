"""``upsampcheck model``, along the data path: :mod:`.check` (options, the input shape,
discovery, the orchestration), :mod:`.rates` (each stage's exact rates), :mod:`.periods` (the
multitone period that fits every stage), :mod:`.taps` (the probe pass, every stage measured in
its hook), :mod:`.stages` (attribution, standalone drives, the output's lines)."""
