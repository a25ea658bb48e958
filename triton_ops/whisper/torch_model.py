"""Whisper rebuilt in PyTorch from CTranslate2 tensors, shaped for export with a KV cache.

Two graphs: the encoder turns a log-mel window into every decoder layer's cross-attention
keys and values (computed once per utterance); a decoder step takes new tokens plus the
self-attention cache and returns the last position's logits and the grown cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from triton_ops.whisper.ct2 import CT2Model


def _linear(model: CT2Model, prefix: str) -> nn.Linear:
    weight = model.f32(f"{prefix}/weight")
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    layer.weight.data = torch.from_numpy(weight.copy())
    layer.bias = nn.Parameter(torch.from_numpy(model.f32(f"{prefix}/bias").copy()))
    return layer


def _norm(model: CT2Model, prefix: str) -> nn.LayerNorm:
    gamma = model.f32(f"{prefix}/gamma")
    norm = nn.LayerNorm(gamma.shape[0], eps=1e-5)
    norm.weight.data = torch.from_numpy(gamma.copy())
    norm.bias.data = torch.from_numpy(model.f32(f"{prefix}/beta").copy())
    return norm


def _conv(model: CT2Model, prefix: str, stride: int) -> nn.Conv1d:
    weight = model.f32(f"{prefix}/weight")
    conv = nn.Conv1d(weight.shape[1], weight.shape[0], weight.shape[2], stride=stride, padding=1)
    conv.weight.data = torch.from_numpy(weight.copy())
    conv.bias = nn.Parameter(torch.from_numpy(model.f32(f"{prefix}/bias").copy()))
    return conv


def _heads(x: Tensor, heads: int) -> Tensor:
    """[B, T, D] → [B, H, T, D/H]"""
    batch, time, width = x.shape
    return x.view(batch, time, heads, width // heads).transpose(1, 2)


def _merge(x: Tensor) -> Tensor:
    """[B, H, T, Dh] → [B, T, H·Dh]"""
    batch, heads, time, depth = x.shape
    return x.transpose(1, 2).reshape(batch, time, heads * depth)


def _attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
    if mask is not None:
        scores = scores + mask
    attended: Tensor = torch.softmax(scores, dim=-1) @ v
    return attended


class EncoderLayer(nn.Module):
    def __init__(self, model: CT2Model, prefix: str, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm = _norm(model, f"{prefix}/self_attention/layer_norm")
        self.qkv = _linear(model, f"{prefix}/self_attention/linear_0")
        self.out = _linear(model, f"{prefix}/self_attention/linear_1")
        self.ffn_norm = _norm(model, f"{prefix}/ffn/layer_norm")
        self.ffn_in = _linear(model, f"{prefix}/ffn/linear_0")
        self.ffn_out = _linear(model, f"{prefix}/ffn/linear_1")

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv(self.attn_norm(x)).chunk(3, dim=-1)
        x = x + self.out(
            _merge(_attend(_heads(q, self.heads), _heads(k, self.heads), _heads(v, self.heads)))
        )
        out: Tensor = x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))
        return out


class WhisperEncoder(nn.Module):
    """mel [B, 80, 3000] → cross-attention K/V of every decoder layer [L, 2, B, H, 1500, Dh]."""

    positions: Tensor

    def __init__(self, model: CT2Model) -> None:
        super().__init__()
        self.heads = model.scalar("encoder/num_heads")
        self.conv1 = _conv(model, "encoder/conv1", stride=1)
        self.conv2 = _conv(model, "encoder/conv2", stride=2)
        self.register_buffer(
            "positions", torch.from_numpy(model.f32("encoder/position_encodings/encodings").copy())
        )
        count = _count_layers(model, "encoder")
        self.layers = nn.ModuleList(
            EncoderLayer(model, f"encoder/layer_{i}", self.heads) for i in range(count)
        )
        self.norm = _norm(model, "encoder/layer_norm")
        decoder_layers = _count_layers(model, "decoder")
        self.cross_kv = nn.ModuleList(
            _linear(model, f"decoder/layer_{i}/attention/linear_1") for i in range(decoder_layers)
        )

    def hidden(self, mel: Tensor) -> Tensor:
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        x = x + self.positions[: x.shape[1]]
        for layer in self.layers:
            x = layer(x)
        normed: Tensor = self.norm(x)
        return normed

    def forward(self, mel: Tensor) -> Tensor:
        x = self.hidden(mel)
        per_layer = []
        for projection in self.cross_kv:
            k, v = projection(x).chunk(2, dim=-1)
            per_layer.append(torch.stack([_heads(k, self.heads), _heads(v, self.heads)]))
        return torch.stack(per_layer)


class DecoderLayer(nn.Module):
    def __init__(self, model: CT2Model, prefix: str, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.self_norm = _norm(model, f"{prefix}/self_attention/layer_norm")
        self.self_qkv = _linear(model, f"{prefix}/self_attention/linear_0")
        self.self_out = _linear(model, f"{prefix}/self_attention/linear_1")
        self.cross_norm = _norm(model, f"{prefix}/attention/layer_norm")
        self.cross_q = _linear(model, f"{prefix}/attention/linear_0")
        self.cross_out = _linear(model, f"{prefix}/attention/linear_2")
        self.ffn_norm = _norm(model, f"{prefix}/ffn/layer_norm")
        self.ffn_in = _linear(model, f"{prefix}/ffn/linear_0")
        self.ffn_out = _linear(model, f"{prefix}/ffn/linear_1")

    def forward(
        self, x: Tensor, past: Tensor, cross: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """past [2, B, H, P, Dh], cross [2, B, H, S, Dh] → (x, present [2, B, H, P+T, Dh])"""
        q, k, v = self.self_qkv(self.self_norm(x)).chunk(3, dim=-1)
        k = torch.cat([past[0], _heads(k, self.heads)], dim=2)
        v = torch.cat([past[1], _heads(v, self.heads)], dim=2)
        x = x + self.self_out(_merge(_attend(_heads(q, self.heads), k, v, mask)))
        q = _heads(self.cross_q(self.cross_norm(x)), self.heads)
        x = x + self.cross_out(_merge(_attend(q, cross[0], cross[1])))
        x = x + self.ffn_out(F.gelu(self.ffn_in(self.ffn_norm(x))))
        return x, torch.stack([k, v])


class WhisperDecoderStep(nn.Module):
    """(tokens [B, T], past [L, 2, B, H, P, Dh], cross [L, 2, B, H, S, Dh])
    → (logits of the last position [B, V], present [L, 2, B, H, P+T, Dh])"""

    embeddings: Tensor
    positions: Tensor

    def __init__(self, model: CT2Model) -> None:
        super().__init__()
        heads = model.scalar("decoder/num_heads")
        self.heads = heads
        self.register_buffer(
            "embeddings", torch.from_numpy(model.f32("decoder/embeddings/weight").copy())
        )
        self.register_buffer(
            "positions", torch.from_numpy(model.f32("decoder/position_encodings/encodings").copy())
        )
        count = _count_layers(model, "decoder")
        self.layers = nn.ModuleList(
            DecoderLayer(model, f"decoder/layer_{i}", heads) for i in range(count)
        )
        self.norm = _norm(model, "decoder/layer_norm")

    def forward(self, tokens: Tensor, past: Tensor, cross: Tensor) -> tuple[Tensor, Tensor]:
        start = past.shape[4]
        length = tokens.shape[1]
        positions = torch.arange(length) + start
        x = F.embedding(tokens, self.embeddings) + F.embedding(positions, self.positions)
        keys = torch.arange(start + length)
        mask = torch.where(keys[None, :] <= positions[:, None], 0.0, float("-inf"))
        present = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, past[i], cross[i], mask)
            present.append(kv)
        logits = self.norm(x[:, -1]) @ self.embeddings.T
        return logits, torch.stack(present)


def _count_layers(model: CT2Model, side: str) -> int:
    count = 0
    while f"{side}/layer_{count}/ffn/linear_0/weight" in model.tensors:
        count += 1
    return count
