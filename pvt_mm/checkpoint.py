"""Reading, layout detection, conversion and strict key checking of PVT weights.

Accepted sources (a local path or an http(s) URL, ``.pth``/``.pt`` through
``torch.load(weights_only=True)`` or ``.safetensors``):

* the official PVT v1 checkpoints (``pvt_tiny.pth`` ... ``pvt_large.pth``), a flat dict or
  one wrapped in ``model`` / ``state_dict``; ``cls_token``, ``norm.*`` and ``head.*`` (the
  classifier) are skipped with one logged line, and the class-token row of the last
  stage's position embedding is dropped;
* mmdet's ``PyramidVisionTransformer`` layout (its ``pvt_convert`` output);
* pvt_mm's own layout;
* whole detector / segmentor / training checkpoints, whose ``backbone.`` keys are taken,
  and DataParallel / DDP ``module.`` prefixes.

Nothing is loaded partially: any missing, unexpected or mis-shaped key raises
:class:`CheckpointError` naming the file and the keys.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

LAYOUTS = ('pvt_mm', 'official', 'mmdet')
_SKIPPED_OFFICIAL = ('cls_token', 'norm.', 'head.')
_WRAPPER_KEYS = ('state_dict', 'model', 'module', 'model_state', 'model_state_dict')
_PREFIXES = ('module.', 'backbone.')


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def resolve_source(source: str) -> str:
    """Returns a local path for ``source``, downloading an http(s) URL into torch's hub cache.

    Raises:
        FileNotFoundError: the local file does not exist.
        CheckpointError: an unsupported URL scheme.
    """
    source = os.fspath(source)
    scheme = urlparse(source).scheme
    if scheme in ('http', 'https'):
        dst_dir = os.path.join(torch.hub.get_dir(), 'checkpoints')
        os.makedirs(dst_dir, exist_ok=True)
        dst = os.path.join(dst_dir, os.path.basename(urlparse(source).path))
        if not os.path.isfile(dst):
            print_log(f'Downloading {source} to {dst}', logger='current')
            torch.hub.download_url_to_file(source, dst, progress=True)
        return dst
    if scheme and len(scheme) > 1:  # a one-letter "scheme" is a Windows drive
        raise CheckpointError(f'Unsupported checkpoint location {source!r}: use a local path '
                              'or an http(s) URL.')
    path = os.path.expanduser(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Checkpoint file {path!r} does not exist.')
    return path


def read_checkpoint(source: str, map_location: str | torch.device = 'cpu') -> Any:
    """Reads a checkpoint file safely (no code runs on load) and returns its content.

    ``.safetensors`` files are read with safetensors; everything else with
    ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated, not a checkpoint, or needs arbitrary
            Python objects to unpickle (refused: that is how malicious pickles run code).
    """
    path = resolve_source(source)
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        try:
            return load_file(path, device=str(map_location))
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f'{path}: not a readable .safetensors file ({e}).') from e
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        text = str(e)
        if 'Weights only load failed' in text or 'Unsupported global' in text or \
                'unrecognized function' in text:
            reason = ('it contains Python objects beyond tensors and plain containers, '
                      'which pvt_mm refuses to unpickle (weights_only=True) so that no code '
                      'in the file can run')
        else:
            reason = 'it is truncated, corrupt, or not a PyTorch checkpoint'
        first_line = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        raise CheckpointError(f'Cannot load checkpoint {path}: {reason} '
                              f'({type(e).__name__}: {first_line}).') from e


def unwrap_state_dict(obj: Any, source: str = '<checkpoint>') -> dict[str, Tensor]:
    """Finds the tensor dict inside a checkpoint (``state_dict``/``model`` wrappers)."""
    for _ in range(3):
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is not None and not _is_tensor_dict(obj):
                obj = inner
                continue
        break
    if not isinstance(obj, Mapping) or not obj or not _is_tensor_dict(obj):
        kind = type(obj).__name__ if not isinstance(obj, Mapping) else \
            f'a dict with keys {sorted(map(str, obj))[:8]}'
        raise CheckpointError(f'{source}: no state dict of tensors found (got {kind}).')
    return {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}


def _is_tensor_dict(obj: Mapping) -> bool:
    values = list(obj.values())
    return bool(values) and sum(isinstance(v, Tensor) for v in values) >= len(values) / 2


def strip_prefixes(state_dict: dict[str, Tensor], prefix: str | None = None) -> dict[str, Tensor]:
    """Keeps the keys under ``prefix`` (given, or ``module.``/``backbone.`` when present)."""
    sd = dict(state_dict)
    if prefix:
        prefix = prefix if prefix.endswith('.') else prefix + '.'
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            under = {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}
            # DDP wraps every key; a detector keeps neck/head keys beside backbone.*.
            if under and (p == 'backbone.' or len(under) == len(sd)):
                sd, changed = under, True
    return sd


def detect_layout(state_dict: Mapping[str, Tensor]) -> str:
    """Names the key layout: ``'pvt_mm'``, ``'official'`` or ``'mmdet'``.

    Raises:
        CheckpointError: PVTv2 weights, or a layout that is no PVT at all.
    """
    keys = list(state_dict)
    if any('dwconv' in k for k in keys) or any(re.match(r'layers\.\d+\.1\.\d+\.ffn\.layers\.4\.', k)
                                               for k in keys):
        raise CheckpointError('these are PVTv2 weights (depth-wise conv in the MLP); pvt_mm '
                              'implements PVT v1 and cannot load them.')
    if any(k.startswith('stages.') for k in keys):
        return 'pvt_mm'
    if any(re.match(r'(patch_embed|block|pos_embed)\d', k) for k in keys):
        if not any(k.startswith('pos_embed') for k in keys):
            raise CheckpointError('official-layout weights without position embeddings: '
                                  'these are PVTv2 weights, which pvt_mm (PVT v1) cannot load.')
        return 'official'
    if any(re.match(r'layers\.\d+\.0\.projection\.', k) for k in keys):
        if not any(k.endswith('.pos_embed') for k in keys):
            raise CheckpointError("mmdet-layout weights without position embeddings: these are "
                                  "PVTv2 weights, which pvt_mm (PVT v1) cannot load.")
        return 'mmdet'
    raise CheckpointError(f'no PVT weights recognised (first keys: {keys[:5]}).')


def convert_official(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps the official PVT v1 keys (``patch_embed1``, ``pos_embed1``, ``block1.0``...) to pvt_mm's.

    The classifier parts (``cls_token``, ``norm.*``, ``head.*``) are skipped with one log
    line; the official code always gives the last stage's position embedding one extra
    leading row for the class token, which is dropped.
    """
    out: dict[str, Tensor] = {}
    skipped = [k for k in state_dict if k.startswith(_SKIPPED_OFFICIAL)]
    last = max((int(m.group(1)) for k in state_dict
                if (m := re.match(r'pos_embed(\d+)$', k))), default=0)
    for key, value in state_dict.items():
        if key in skipped:
            continue
        if m := re.match(r'patch_embed(\d+)\.(.*)', key):
            out[f'stages.{int(m.group(1)) - 1}.patch_embed.{m.group(2)}'] = value
        elif m := re.match(r'pos_embed(\d+)$', key):
            stage = int(m.group(1))
            out[f'stages.{stage - 1}.pos_embed'] = value[:, 1:] if stage == last else value
        elif m := re.match(r'block(\d+)\.(\d+)\.(.*)', key):
            out[f'stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}.{m.group(3)}'] = value
        else:
            out[key] = value  # left for the key check to report
    if skipped:
        print_log(f'PVT checkpoint: skipped the ImageNet classifier keys {_summarise(skipped)}',
                  logger='current')
    return out


def convert_mmdet(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps mmdet's ``PyramidVisionTransformer`` keys to pvt_mm's.

    mmdet fuses q and kv into ``attn.attn.in_proj_*`` (rows: q, then k, then v), keeps the
    output projection in ``attn.attn.out_proj`` and runs the MLP as 1x1 convolutions.
    """
    out: dict[str, Tensor] = {}
    offset = {int(m.group(1)): 1 for k in state_dict
              if (m := re.match(r'layers\.(\d+)\.1\.0\.pos_embed$', k))}
    subs = [
        (r'attn\.attn\.out_proj\.', 'attn.proj.'),
        (r'ffn\.layers\.0\.', 'mlp.fc1.'),
        (r'ffn\.layers\.3\.', 'mlp.fc2.'),
    ]
    for key, value in state_dict.items():
        if m := re.match(r'layers\.(\d+)\.0\.(projection|norm)\.(.*)', key):
            part = 'proj' if m.group(2) == 'projection' else 'norm'
            out[f'stages.{m.group(1)}.patch_embed.{part}.{m.group(3)}'] = value
        elif m := re.match(r'layers\.(\d+)\.1\.0\.pos_embed$', key):
            out[f'stages.{m.group(1)}.pos_embed'] = value
        elif m := re.match(r'layers\.(\d+)\.1\.(\d+)\.(.*)', key):
            stage, rest = int(m.group(1)), m.group(3)
            prefix = f'stages.{stage}.blocks.{int(m.group(2)) - offset.get(stage, 0)}.'
            if rest.startswith('attn.attn.in_proj_'):
                kind = rest[len('attn.attn.in_proj_'):]
                dim = value.shape[0] // 3
                out[f'{prefix}attn.q.{kind}'] = value[:dim]
                out[f'{prefix}attn.kv.{kind}'] = value[dim:]
                continue
            for pattern, repl in subs:
                rest = re.sub('^' + pattern, repl, rest)
            if rest.startswith('mlp.fc') and rest.endswith('weight') and value.ndim == 4:
                value = value.flatten(1)
            out[prefix + rest] = value
        else:
            out[key] = value
    return out


def to_official(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps pvt_mm's keys back to the official layout (the inverse of :func:`convert_official`).

    The last stage's position embedding gets its class-token row back as zeros, so that the
    result loads into the official code and into mmdet's ``pvt_convert``.
    """
    last = max((int(m.group(1)) for k in state_dict
                if (m := re.match(r'stages\.(\d+)\.', k))), default=-1)
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if m := re.match(r'stages\.(\d+)\.patch_embed\.(.*)', key):
            out[f'patch_embed{int(m.group(1)) + 1}.{m.group(2)}'] = value
        elif m := re.match(r'stages\.(\d+)\.pos_embed$', key):
            stage = int(m.group(1))
            out[f'pos_embed{stage + 1}'] = torch.cat(
                [value.new_zeros(1, 1, value.shape[-1]), value], dim=1) if stage == last else value
        elif m := re.match(r'stages\.(\d+)\.blocks\.(\d+)\.(.*)', key):
            out[f'block{int(m.group(1)) + 1}.{m.group(2)}.{m.group(3)}'] = value
        else:
            raise CheckpointError(f'to_official: {key!r} is not a pvt_mm backbone key.')
    return out


_CONVERTERS = {'pvt_mm': dict, 'official': convert_official, 'mmdet': convert_mmdet}


def convert_state_dict(state_dict: Mapping[str, Tensor], prefix: str | None = None,
                       source: str = '<checkpoint>') -> tuple[dict[str, Tensor], str]:
    """Strips wrappers' prefixes, detects the layout and converts to pvt_mm's keys.

    Returns:
        The converted state dict and the detected layout name.
    """
    sd = strip_prefixes(dict(state_dict), prefix)
    if not sd:
        raise CheckpointError(f'{source}: no keys under the prefix {prefix!r}.')
    try:
        layout = detect_layout(sd)
    except CheckpointError as e:
        raise CheckpointError(f'{source}: {e}') from None
    return _CONVERTERS[layout](sd), layout


def load_pvt_state_dict(source: str, prefix: str | None = None,
                        map_location: str | torch.device = 'cpu') -> tuple[dict[str, Tensor], str]:
    """Reads ``source`` and returns its backbone weights in pvt_mm's layout, and the layout."""
    obj = read_checkpoint(source, map_location)
    return convert_state_dict(unwrap_state_dict(obj, source), prefix, source)


def check_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """Raises :class:`CheckpointError` unless keys and shapes match ``model`` exactly."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = [f'{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}'
              for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if not (missing or unexpected or shapes):
        return
    lines = [f'Checkpoint {source} does not fit this PVT '
             f'({_describe_arch(getattr(model, "arch", None))}); nothing was loaded.']
    file_depths = _depths_of(state_dict)
    if file_depths and getattr(model, 'arch', None) and \
            file_depths != tuple(model.arch['depths']):
        lines.append(f'The file holds depths {file_depths} ({_name_of(file_depths)}).')
    if any('pos_embed' in s for s in shapes):
        lines.append('Position-embedding grids differ: set pretrain_img_size to the size the '
                     'checkpoint was trained at.')
    if missing:
        lines.append(f'Missing in the file ({len(missing)}): {_summarise(missing)}')
    if unexpected:
        lines.append(f'Unexpected in the file ({len(unexpected)}): {_summarise(unexpected)}')
    if shapes:
        lines.append(f'Shape mismatches ({len(shapes)}): {_summarise(shapes)}')
    raise CheckpointError('\n  '.join(lines))


def load_pretrained(model: nn.Module, source: str, prefix: str | None = None,
                    map_location: str | torch.device = 'cpu') -> None:
    """Loads a PVT checkpoint into ``model`` strictly (all keys, all shapes) or raises."""
    state_dict, layout = load_pvt_state_dict(source, prefix, map_location)
    check_state_dict(model, state_dict, source)
    model.load_state_dict(state_dict, strict=True)
    print_log(f'PVT: loaded {len(state_dict)} tensors from {source} ({layout} layout).',
              logger='current')


def _summarise(items: list[str], limit: int = 8) -> str:
    shown = ', '.join(items[:limit])
    return shown + (f', ... ({len(items) - limit} more)' if len(items) > limit else '')


def _depths_of(state_dict: Mapping[str, Tensor]) -> tuple[int, ...]:
    blocks = {(int(m.group(1)), int(m.group(2))) for k in state_dict
              if (m := re.match(r'stages\.(\d+)\.blocks\.(\d+)\.', k))}
    counts = Counter(stage for stage, _ in blocks)
    return tuple(counts[i] for i in range(max(counts) + 1)) if counts else ()


def _arch_name(depths: tuple[int, ...]) -> str | None:
    """The Table 1 size name with these stage depths, or None."""
    from .models.pvt import ARCH_SETTINGS
    return next((name for name, arch in ARCH_SETTINGS.items()
                 if tuple(arch['depths']) == depths), None)


def infer_arch(state_dict: Mapping[str, Tensor], source: str = '<checkpoint>') -> str:
    """The size name whose depths match a pvt_mm-layout state dict."""
    from .models.pvt import ARCH_SETTINGS
    depths = _depths_of(state_dict)
    name = _arch_name(depths)
    if name is None:
        raise CheckpointError(f'{source}: depths {depths} match none of {sorted(ARCH_SETTINGS)}; '
                              'pass the arch explicitly.')
    return name


def _name_of(depths: tuple[int, ...]) -> str:
    name = _arch_name(depths)
    return f'PVT-{name}' if name else 'a custom arch'


def _describe_arch(arch: dict | None) -> str:
    if not arch:
        return 'unknown arch'
    return f'{_name_of(tuple(arch["depths"]))}, depths {tuple(arch["depths"])}'


__all__ = ['CheckpointError', 'LAYOUTS', 'read_checkpoint', 'unwrap_state_dict', 'strip_prefixes',
           'detect_layout', 'convert_official', 'convert_mmdet', 'convert_state_dict',
           'load_pvt_state_dict', 'check_state_dict', 'load_pretrained', 'infer_arch', 'to_official']
