"""segtui: INT8 optimization of instance-segmentation models, measured, in the terminal."""

__version__ = "0.1.0"
