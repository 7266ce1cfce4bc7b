"""The Python API (docs/api.md): what `import elubench` offers, over the same engine as the
command line, which is a thin layer over it. Nothing here is imported by `import elubench`
until it is used."""
