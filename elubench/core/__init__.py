"""The foundation every other package stands on, importing nothing of elubench: the errors a
user can act on, the atomic file writer, default folders, the limits of a spec, what this
machine offers, the seeding rule and the units of a task's score. Pure Python, no torch."""
