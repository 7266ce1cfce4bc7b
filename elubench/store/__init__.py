"""The results tree: its layout, the run record (the one definition of run.json and the other
files a run leaves), writing run folders with claims, and reading a tree into pandas tables.
No torch."""
