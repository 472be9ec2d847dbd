"""Plain-Python core of Land Cover U-Net: masks, tiling, training, prediction, metrics, files.

Nothing in this package imports QGIS, so it can be tested and reused on its own; TensorFlow and
Keras are imported only inside the functions that need them.
"""
