"""Measurements beside the benchmark: the engine against a plain PyTorch loop (bench) and the
forward signal at initialization (signal)."""
