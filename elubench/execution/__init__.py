"""Running a matrix: claims, failures and exit codes on this machine (runner), several specs in
one call (campaign), the dry run, and the executors that place runs (serial, local processes,
Ray, Slurm). The driver imports no torch; workers do."""
