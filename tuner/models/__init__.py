"""Model builders: a search-space sample in, a compiled Keras model out."""
