"""The train stage: the shared recipe, resume states, GPU batches, data-parallel runs."""
