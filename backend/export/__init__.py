"""Export: a trained model file written in another format (ONNX) for other tools."""
