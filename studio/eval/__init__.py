"""Matching predictions to ground truth and COCO metrics. Imports no Qt."""
