"""What a reader sees of recorded runs: the analysis of a results folder with its spec's
defaults, the tables in every format, the figures, REPORT.md and REPORT.html."""
