"""Studio: label images and video with the help of models, compare models, export datasets."""

__version__ = "0.1.0"
