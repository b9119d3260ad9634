"""The evaluate and compare stages: test-split metrics per run, differences between methods."""
