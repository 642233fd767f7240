"""Trainers (ultralytics detectors) from stored annotations."""
