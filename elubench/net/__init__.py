"""The torch network a spec builds: its layers, the builder, the paired initialization and its
hash, and the memory one run needs (estimated from the layout, without torch)."""
