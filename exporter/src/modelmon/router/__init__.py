"""The canary router: sends each prediction to the stable or the canary exporter by weight."""
