"""From a finished study to answers: test-set evaluation and error analysis, export and
prediction, Optuna reports, sampler comparisons and the dashboard.

Every module imports TensorFlow, MLflow, Optuna and matplotlib inside its functions, so
importing this package stays cheap.
"""
