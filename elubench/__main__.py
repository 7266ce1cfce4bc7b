from elubench.cli import main

main()
