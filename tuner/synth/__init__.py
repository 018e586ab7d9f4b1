"""Synthetic handwriting drawn from stroke medians: the embedded default dataset."""
