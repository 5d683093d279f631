"""Input and output: h5ad sources, alignment, GMT files and run folders."""
