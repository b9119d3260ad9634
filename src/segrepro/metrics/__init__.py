"""Segmentation metrics: confusion-matrix IoU, boundary metrics, statistics, the metric registry."""
