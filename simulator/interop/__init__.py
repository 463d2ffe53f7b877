"""Bridges to other frameworks: PyTorch <-> TensorFlow through DLPack."""
