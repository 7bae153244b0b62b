"""The official PVT v1 classifier's forward, restated as plain functions on its own key layout.

An oracle for the tests, independent of pvt_mm's modules and converter: it reads the
official keys (``patch_embed{s}``, ``pos_embed{s}`` with the class-token row in the last
stage, ``block{s}.{j}.*``, ``cls_token``, ``norm``, ``head``) directly and follows the
official classification model's computation (classification/pvt.py of whai362/PVT):
LayerNorm eps 1e-5 in the patch embeddings and the spatial reduction, 1e-6 in the blocks and
the final norm, the explicit softmax attention, exact GELU, position embeddings bilinearly
resized (align_corners=False) when the grid differs, the class token joining stage 4.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pvt_mm.network.arch import resolve_arch


def _ln(x: Tensor, sd: dict, key: str, eps: float) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[f'{key}.weight'], sd[f'{key}.bias'], eps)


def _block(x: Tensor, sd: dict, key: str, hw: tuple[int, int], heads: int, sr: int) -> Tensor:
    b, n, c = x.shape
    y = _ln(x, sd, f'{key}.norm1', 1e-6)
    q = F.linear(y, sd[f'{key}.attn.q.weight'], sd[f'{key}.attn.q.bias'])
    if sr > 1:
        m = y.transpose(1, 2).reshape(b, c, *hw)
        m = F.conv2d(m, sd[f'{key}.attn.sr.weight'], sd[f'{key}.attn.sr.bias'], stride=sr)
        y = _ln(m.flatten(2).transpose(1, 2), sd, f'{key}.attn.norm', 1e-5)
    kv = F.linear(y, sd[f'{key}.attn.kv.weight'], sd[f'{key}.attn.kv.bias'])
    k, v = kv.reshape(b, -1, 2, heads, c // heads).permute(2, 0, 3, 1, 4)
    q = q.reshape(b, n, heads, c // heads).transpose(1, 2)
    attn = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(-1)
    out = (attn @ v).transpose(1, 2).reshape(b, n, c)
    x = x + F.linear(out, sd[f'{key}.attn.proj.weight'], sd[f'{key}.attn.proj.bias'])
    y = _ln(x, sd, f'{key}.norm2', 1e-6)
    y = F.gelu(F.linear(y, sd[f'{key}.mlp.fc1.weight'], sd[f'{key}.mlp.fc1.bias']))
    return x + F.linear(y, sd[f'{key}.mlp.fc2.weight'], sd[f'{key}.mlp.fc2.bias'])


def _pos(pos: Tensor, hw: tuple[int, int]) -> Tensor:
    side = int(round(pos.shape[1] ** 0.5))  # the official grids are square (224x224 training)
    if (side, side) == tuple(hw):
        return pos
    grid = pos.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    return F.interpolate(grid, size=hw, mode='bilinear').flatten(2).transpose(1, 2)


@torch.no_grad()
def official_logits(sd: dict, x: Tensor, arch: str | dict) -> Tensor:
    """Logits of the official classifier with weights ``sd`` (official layout) for images ``x``."""
    a = resolve_arch(arch)
    last = len(a['depths'])
    b = x.shape[0]
    for s in range(1, last + 1):
        x = F.conv2d(x, sd[f'patch_embed{s}.proj.weight'], sd[f'patch_embed{s}.proj.bias'],
                     stride=a['patch_sizes'][s - 1])
        hw = tuple(x.shape[-2:])
        x = _ln(x.flatten(2).transpose(1, 2), sd, f'patch_embed{s}.norm', 1e-5)
        pos = sd[f'pos_embed{s}']
        if s == last:
            x = torch.cat([sd['cls_token'].expand(b, -1, -1), x], dim=1)
            pos = torch.cat([pos[:, :1], _pos(pos[:, 1:], hw)], dim=1)
        else:
            pos = _pos(pos, hw)
        x = x + pos
        for j in range(a['depths'][s - 1]):
            x = _block(x, sd, f'block{s}.{j}', hw, a['num_heads'][s - 1], a['sr_ratios'][s - 1])
        if s != last:
            x = x.transpose(1, 2).reshape(b, -1, *hw)
    x = _ln(x, sd, 'norm', 1e-6)
    return F.linear(x[:, 0], sd['head.weight'], sd['head.bias'])


# ---- PVTv2: classification/pvt_v2.py and detection/pvt_v2.py of whai362/PVT (branch v2) ----

def _block_v2(x: Tensor, sd: dict, key: str, hw: tuple[int, int], heads: int, sr: int,
              linear: bool) -> Tensor:
    b, n, c = x.shape
    y = _ln(x, sd, f'{key}.norm1', 1e-6)
    q = F.linear(y, sd[f'{key}.attn.q.weight'], sd[f'{key}.attn.q.bias'])
    if linear or sr > 1:
        m = y.permute(0, 2, 1).reshape(b, c, *hw)
        if linear:  # AdaptiveAvgPool2d(7), 1x1 conv, LayerNorm, GELU
            m = F.conv2d(F.adaptive_avg_pool2d(m, 7), sd[f'{key}.attn.sr.weight'],
                         sd[f'{key}.attn.sr.bias'])
            y = F.gelu(_ln(m.reshape(b, c, -1).permute(0, 2, 1), sd, f'{key}.attn.norm', 1e-5))
        else:
            m = F.conv2d(m, sd[f'{key}.attn.sr.weight'], sd[f'{key}.attn.sr.bias'], stride=sr)
            y = _ln(m.reshape(b, c, -1).permute(0, 2, 1), sd, f'{key}.attn.norm', 1e-5)
    kv = F.linear(y, sd[f'{key}.attn.kv.weight'], sd[f'{key}.attn.kv.bias'])
    k, v = kv.reshape(b, -1, 2, heads, c // heads).permute(2, 0, 3, 1, 4)
    q = q.reshape(b, n, heads, c // heads).permute(0, 2, 1, 3)
    attn = ((q @ k.transpose(-2, -1)) * (c // heads) ** -0.5).softmax(-1)
    x = x + F.linear((attn @ v).transpose(1, 2).reshape(b, n, c),
                     sd[f'{key}.attn.proj.weight'], sd[f'{key}.attn.proj.bias'])
    y = F.linear(_ln(x, sd, f'{key}.norm2', 1e-6), sd[f'{key}.mlp.fc1.weight'],
                 sd[f'{key}.mlp.fc1.bias'])
    if linear:
        y = F.relu(y)
    hidden = y.shape[-1]
    y = F.conv2d(y.transpose(1, 2).view(b, hidden, *hw), sd[f'{key}.mlp.dwconv.dwconv.weight'],
                 sd[f'{key}.mlp.dwconv.dwconv.bias'], padding=1, groups=hidden)
    y = F.gelu(y.flatten(2).transpose(1, 2))
    return x + F.linear(y, sd[f'{key}.mlp.fc2.weight'], sd[f'{key}.mlp.fc2.bias'])


@torch.no_grad()
def official_v2_features(sd: dict, x: Tensor, arch: str | dict) -> list[Tensor]:
    """The official detection backbone's four maps (official layout weights ``sd``)."""
    from pvt_mm.network.arch import resolve_arch_v2
    a = resolve_arch_v2(arch)
    b, outs = x.shape[0], []
    for s in range(1, len(a['depths']) + 1):
        k = 7 if s == 1 else 3
        x = F.conv2d(x, sd[f'patch_embed{s}.proj.weight'], sd[f'patch_embed{s}.proj.bias'],
                     stride=4 if s == 1 else 2, padding=k // 2)
        hw = tuple(x.shape[-2:])
        x = _ln(x.flatten(2).transpose(1, 2), sd, f'patch_embed{s}.norm', 1e-5)
        for j in range(a['depths'][s - 1]):
            x = _block_v2(x, sd, f'block{s}.{j}', hw, a['num_heads'][s - 1],
                          a['sr_ratios'][s - 1], a['linear'])
        x = _ln(x, sd, f'norm{s}', 1e-6).reshape(b, *hw, -1).permute(0, 3, 1, 2).contiguous()
        outs.append(x)
    return outs


@torch.no_grad()
def official_v2_logits(sd: dict, x: Tensor, arch: str | dict) -> Tensor:
    """The official classifier's logits: the mean of the last stage's tokens, the head."""
    last = official_v2_features(sd, x, arch)[-1]
    return F.linear(last.flatten(2).mean(-1), sd['head.weight'], sd['head.bias'])
