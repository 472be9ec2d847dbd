"""Keras architectures, losses and metrics (``keras`` and ``keras.ops`` only, any backend)."""
