"""One training run: the device and process-wide settings, the step, evaluations, bias-shift
probes, checkpoints and the record. Knows nothing of the results tree (a RunSink keeps what it
produces)."""
