"""Executors: where a matrix's runs train.

    serial   one after another in this process (the reference the others match)
    local    worker processes on this machine (executors.local)
    ray      a Ray task per run (executors.ray_tasks)
    slurm    a Slurm job per run, in a job array through submitit (executors.slurm)

`executors.factory.executor_for` turns `elubench run`'s flags into one of them (by default: as
many runs at once as the cores allow on a CPU, see `default_executor`); what they share is in
executors.base. Importing them imports neither torch nor Ray nor submitit.
"""
