"""Experiment tracking: every study is an MLflow experiment, every trial a nested run."""
