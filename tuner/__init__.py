"""tuner: hyperparameter studies for Keras CNNs on handwritten Chinese characters."""

__version__ = "0.1.0"
