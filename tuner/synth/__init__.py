"""Synthetic handwriting drawn from stroke medians: the embedded default dataset.

- :mod:`tuner.synth.strokes`: the vendored stroke data (Make Me a Hanzi, Arphic Public
  License): ``load_medians``, ``split_available``.
- :mod:`tuner.synth.render`: ``WriterStyle``, ``sample_writer``, ``render_character``.
- :mod:`tuner.synth.generate`: ``synth_images`` (arrays) and ``write_layout`` (the course's
  Train/Test folders), deterministic per (seed, writer, character), parallel.
- :mod:`tuner.synth.default`: ``default_dataset_root``, generated once into the cache.

Nothing is imported here, so that ``import tuner.synth.default`` stays cheap for the CLI.
"""
