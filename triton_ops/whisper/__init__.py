"""Whisper-base for Triton: read the packaged CTranslate2 weights, export ONNX, check it.

These modules run in the build environment (`.venv-build`, with torch); the runtime that
serves the exported graphs lives in `model_repository/asr/1/`.
"""
