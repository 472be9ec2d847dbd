"""The model file, one package: its metadata (``metadata.py``), the ``.keras`` format
(``keras_file.py``) and its safety check (``keras_safety.py``, ``weights_safety.py``), exported
ONNX files (``onnx_runtime.py``, ``onnx_safety.py``), the default inference window
(``windows.py``), and ``opened.open_model``, the one way every stage opens a file."""
