"""modelmon-ops: the operator's tools for a deployed model: load, drift, A/B, retrain, report."""
