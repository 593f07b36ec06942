"""Named, reproducible experiments used by the CLI and the notebooks, one file each."""
