"""modelmon: a scikit-learn model server that exports model-quality and serving metrics."""

__version__ = "0.1.0"
