"""The quality gate of a canary: one decision (promote, hold, roll back) for every way a canary is
promoted (modelmon-ops promote, Argo Rollouts, Flagger), from the counters the exporter exports."""
