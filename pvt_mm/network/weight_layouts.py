"""Key layouts of PVT v1 and PVTv2 weights and the conversions between them.

PVT v1:

* ``official``: the official code's ``patch_embed{i}``, ``pos_embed{i}`` (the last stage's
  with one leading class-token row), ``block{i}.{j}.*``, plus the classifier's
  ``cls_token``, ``norm.*`` and ``head.*``;
* ``mmdet``: mmdet's ``PyramidVisionTransformer`` (what its ``pvt_convert`` writes), with
  q, k and v fused into ``attn.attn.in_proj_*`` and the MLP as 1x1 convolutions;
* ``hf``: HF transformers' ``PvtModel`` / ``PvtForImageClassification`` (what its
  ``save_pretrained`` writes, and the hub's copies of the official weights): ``encoder.
  patch_embeddings.{i}`` (the class token in the last), ``encoder.block.{i}.{j}`` with q, k and
  v apart, ``encoder.layer_norm``, ``classifier``, all under ``pvt.`` in the classifier;
* ``pvt_mm``: this package's ``stages.{i}.patch_embed``, ``stages.{i}.pos_embed``,
  ``stages.{i}.blocks.{j}.*``, and for the classifier ``cls_token``, ``cls_pos_embed`` (the
  class token's row of the official last position embedding), ``norm.*`` and ``head.*``.

PVTv2:

* ``official_v2``: the official ``patch_embed{i}``, ``block{i}.{j}.*`` (the FFN's
  ``mlp.dwconv.dwconv``), ``norm{i}`` (each stage's closing norm), ``head``;
* ``timm_v2``: timm's ``pvt_v2_*`` (``patch_embed`` for stage 1, ``stages.{i}.downsample``
  for the others, ``stages.{i}.blocks.{j}``, ``stages.{i}.norm``, ``head``);
* ``mmdet_v2``: mmdet's ``PyramidVisionTransformerV2`` (``layers.{i}.0`` the patch embedding,
  ``layers.{i}.1.{j}`` the blocks with v1's fused ``attn.attn.in_proj_*`` and the FFN as
  ``ffn.layers.{0,1,4}``, ``layers.{i}.2`` the stage norm);
* ``hf_v2``: HF transformers' ``PvtV2Model`` / ``PvtV2Backbone`` / ``PvtV2ForImageClassification``
  (``encoder.layers.{i}.patch_embedding``, ``.blocks.{j}`` with q, k and v apart,
  ``.layer_norm``, ``classifier``, all under ``pvt_v2.`` in the classifier);
* ``pvt_mm_v2``: this package's ``stages.{i}.patch_embed``, ``stages.{i}.blocks.{j}.*`` (the
  FFN's ``mlp.dwconv``), ``stages.{i}.norm``, ``head``.

:data:`pvt_mm.network.families.LAYOUT_FAMILY` says which network each layout is for (each
family's entry lists its layouts). The classifier's keys carry
over between the official and pvt_mm layouts; whether a model
takes them (a classifier) or leaves them (a backbone) is :mod:`pvt_mm.network.weights`'s call.

Pure functions on dicts of tensors: no file is read here (that is :mod:`pvt_mm.network.weights`)
and no model is built. A layout that is no known PVT raises :class:`LayoutError`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor

# The classifier's keys in pvt_mm's layout (prefixes): what a backbone leaves.
CLASSIFIER_KEYS = ('cls_token', 'cls_pos_embed', 'norm.', 'head.')
_PREFIXES = ('module.', 'backbone.')


class LayoutError(ValueError):
    """Weights whose keys are in no known PVT layout, or cannot be converted."""


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
    """Names the key layout: one of the families' ``layouts``
    (:data:`pvt_mm.network.families.FAMILIES`).

    Raises:
        LayoutError: no PVT layout.
    """
    keys = list(state_dict)
    if any(k.startswith(('encoder.layers.', 'pvt_v2.encoder.')) for k in keys):
        return 'hf_v2'
    if any(k.startswith(('encoder.patch_embeddings.', 'pvt.encoder.')) for k in keys):
        return 'hf'
    if any(re.match(r'layers\.\d+\.1\.\d+\.ffn\.layers\.4\.', k) for k in keys):
        return 'mmdet_v2'
    if any('dwconv' in k for k in keys):  # the convolutional FFN: PVTv2
        if any(k.startswith('patch_embed.') or '.downsample.' in k for k in keys):
            return 'timm_v2'
        if any(k.startswith('stages.') for k in keys):
            return 'pvt_mm_v2'
        if any(re.match(r'(patch_embed|block|norm)\d', k) for k in keys):
            return 'official_v2'
        raise LayoutError(f'PVTv2-like weights (a depth-wise conv) in no known layout '
                          f'(first keys: {keys[:5]}).')
    if any(k.startswith('stages.') for k in keys):
        return 'pvt_mm'
    if any(re.match(r'(patch_embed|block|pos_embed)\d', k) for k in keys):
        if not any(k.startswith('pos_embed') for k in keys):
            raise LayoutError('official-layout weights without position embeddings and '
                              'without the depth-wise convolutions of PVTv2: neither a PVT v1 '
                              'nor a PVTv2 checkpoint (PVTv2 weights have mlp.dwconv keys).')
        return 'official'
    if any(re.match(r'layers\.\d+\.0\.projection\.', k) for k in keys):
        if not any(k.endswith('.pos_embed') for k in keys):
            raise LayoutError("mmdet-layout weights without position embeddings and without "
                              "PVTv2's convolutional FFN (ffn.layers.4): neither mmdet's "
                              'PyramidVisionTransformer nor its PyramidVisionTransformerV2.')
        return 'mmdet'
    raise LayoutError(f'no PVT weights recognised (first keys: {keys[:5]}).')


def convert_official(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps the official PVT v1 keys (``patch_embed1``, ``pos_embed1``, ``block1.0``...) to pvt_mm's.

    The official last position embedding has one leading row for the class token; it
    becomes ``cls_pos_embed``, the rest the last stage's grid. ``cls_token``, ``norm.*`` and
    ``head.*`` keep their names.
    """
    out: dict[str, Tensor] = {}
    last = max((int(m.group(1)) for k in state_dict
                if (m := re.match(r'pos_embed(\d+)$', k))), default=0)
    for key, value in state_dict.items():
        if m := re.match(r'patch_embed(\d+)\.(.*)', key):
            out[f'stages.{int(m.group(1)) - 1}.patch_embed.{m.group(2)}'] = value
        elif m := re.match(r'pos_embed(\d+)$', key):
            stage = int(m.group(1))
            if stage == last:
                out['cls_pos_embed'] = value[:, :1]
                value = value[:, 1:]
            out[f'stages.{stage - 1}.pos_embed'] = value
        elif m := re.match(r'block(\d+)\.(\d+)\.(.*)', key):
            out[f'stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}.{m.group(3)}'] = value
        else:
            out[key] = value  # the classifier's keys, or left for the key check to report
    return out


def convert_mmdet(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps mmdet's ``PyramidVisionTransformer`` and ``PyramidVisionTransformerV2`` keys to
    pvt_mm's.

    mmdet fuses q and kv into ``attn.attn.in_proj_*`` (rows: q, then k, then v), keeps the
    output projection in ``attn.attn.out_proj`` and runs the MLP as 1x1 convolutions:
    ``ffn.layers.{0,3}`` in v1, ``ffn.layers.{0,1,4}`` (fc1, depth-wise conv, fc2) in v2,
    whose stages end with the norm ``layers.{i}.2``.
    """
    out: dict[str, Tensor] = {}
    offset = {int(m.group(1)): 1 for k in state_dict
              if (m := re.match(r'layers\.(\d+)\.1\.0\.pos_embed$', k))}
    v2 = any(re.search(r'\.ffn\.layers\.4\.', k) for k in state_dict)
    subs = [
        (r'attn\.attn\.out_proj\.', 'attn.proj.'),
        (r'ffn\.layers\.0\.', 'mlp.fc1.'),
    ] + ([(r'ffn\.layers\.1\.', 'mlp.dwconv.'), (r'ffn\.layers\.4\.', 'mlp.fc2.')] if v2
         else [(r'ffn\.layers\.3\.', 'mlp.fc2.')])
    for key, value in state_dict.items():
        if m := re.match(r'layers\.(\d+)\.0\.(projection|norm)\.(.*)', key):
            part = 'proj' if m.group(2) == 'projection' else 'norm'
            out[f'stages.{m.group(1)}.patch_embed.{part}.{m.group(3)}'] = value
        elif m := re.match(r'layers\.(\d+)\.2\.(weight|bias)$', key):
            out[f'stages.{m.group(1)}.norm.{m.group(2)}'] = value
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


_HF_BLOCK = {'layer_norm_1.': 'norm1.', 'attention.self.query.': 'attn.q.',
             'attention.self.sequence_reduction.': 'attn.sr.',
             'attention.self.layer_norm.': 'attn.norm.', 'attention.output.dense.': 'attn.proj.',
             'layer_norm_2.': 'norm2.', 'mlp.dense1.': 'mlp.fc1.', 'mlp.dense2.': 'mlp.fc2.'}
_HF_EMBED = {'projection.': 'proj.', 'layer_norm.': 'norm.'}


def _renamed(rest: str, table: Mapping[str, str]) -> str:
    """``rest`` with each leading name of ``table`` replaced by its pvt_mm name."""
    for old, new in table.items():
        rest = re.sub('^' + re.escape(old), new, rest)
    return rest


def convert_hf(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps HF transformers' ``PvtModel`` / ``PvtForImageClassification`` keys to pvt_mm's.

    Keys and values are separate projections there (``attention.self.key`` / ``value``):
    their rows are stacked, keys first, into ``attn.kv`` as in the official code. The last
    stage's position embedding carries the class token's row, which becomes
    ``cls_pos_embed``; ``encoder.layer_norm`` is the final norm, ``classifier`` the head.
    """
    sd = {k[len('pvt.'):] if k.startswith('pvt.') else k: v for k, v in state_dict.items()}
    last = max((int(m.group(1)) for k in sd
                if (m := re.match(r'encoder\.patch_embeddings\.(\d+)\.', k))), default=0)
    out: dict[str, Tensor] = {}
    pending: dict[str, dict[str, Tensor]] = {}  # block prefix -> key/value tensors
    for key, value in sd.items():
        if m := re.match(r'encoder\.patch_embeddings\.(\d+)\.(.*)', key):
            stage, rest = int(m.group(1)), m.group(2)
            if rest == 'cls_token':
                out['cls_token'] = value
            elif rest == 'position_embeddings':
                if stage == last:
                    out['cls_pos_embed'] = value[:, :1]
                    value = value[:, 1:]
                out[f'stages.{stage}.pos_embed'] = value
            else:
                rest = _renamed(rest, _HF_EMBED)
                out[f'stages.{stage}.patch_embed.{rest}'] = value
        elif m := re.match(r'encoder\.block\.(\d+)\.(\d+)\.(.*)', key):
            prefix, rest = f'stages.{m.group(1)}.blocks.{m.group(2)}.', m.group(3)
            if km := re.match(r'attention\.self\.(key|value)\.(weight|bias)$', rest):
                pending.setdefault(f'{prefix}attn.kv.{km.group(2)}', {})[km.group(1)] = value
                continue
            rest = _renamed(rest, _HF_BLOCK)
            out[prefix + rest] = value
        elif key.startswith('encoder.layer_norm.'):
            out['norm.' + key[len('encoder.layer_norm.'):]] = value
        elif key.startswith('classifier.'):
            out['head.' + key[len('classifier.'):]] = value
        else:
            out[key] = value  # left for the key check to report
    out.update(_stacked_kv(pending))
    return out


def _stacked_kv(pending: Mapping[str, Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """HF's separate key and value projections, stacked (keys first) into the official
    ``attn.kv``."""
    out = {}
    for key, parts in pending.items():
        if set(parts) != {'key', 'value'}:
            raise LayoutError(f'HF weights: {key} has {sorted(parts)} but needs key and value.')
        out[key] = torch.cat([parts['key'], parts['value']], dim=0)
    return out


_HF_V2_BLOCK = {'layer_norm_1.': 'norm1.', 'attention.query.': 'attn.q.',
                'attention.spatial_reduction.': 'attn.sr.', 'attention.layer_norm.': 'attn.norm.',
                'attention.proj.': 'attn.proj.', 'layer_norm_2.': 'norm2.',
                'mlp.dense1.': 'mlp.fc1.', 'mlp.dwconv.dwconv.': 'mlp.dwconv.',
                'mlp.dense2.': 'mlp.fc2.'}


def convert_hf_v2(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps HF transformers' ``PvtV2Model`` / ``PvtV2Backbone`` /
    ``PvtV2ForImageClassification`` keys to pvt_mm's: the key and value projections stacked
    into ``attn.kv``, ``encoder.layers.{i}.layer_norm`` the stage norm, ``classifier`` the head.
    """
    sd = {k[len('pvt_v2.'):] if k.startswith('pvt_v2.') else k: v
          for k, v in state_dict.items()}
    out: dict[str, Tensor] = {}
    pending: dict[str, dict[str, Tensor]] = {}
    for key, value in sd.items():
        if m := re.match(r'encoder\.layers\.(\d+)\.patch_embedding\.(.*)', key):
            rest = m.group(2)
            rest = _renamed(rest, _HF_EMBED)
            out[f'stages.{m.group(1)}.patch_embed.{rest}'] = value
        elif m := re.match(r'encoder\.layers\.(\d+)\.blocks\.(\d+)\.(.*)', key):
            prefix, rest = f'stages.{m.group(1)}.blocks.{m.group(2)}.', m.group(3)
            if km := re.match(r'attention\.(key|value)\.(weight|bias)$', rest):
                pending.setdefault(f'{prefix}attn.kv.{km.group(2)}', {})[km.group(1)] = value
                continue
            rest = _renamed(rest, _HF_V2_BLOCK)
            out[prefix + rest] = value
        elif m := re.match(r'encoder\.layers\.(\d+)\.layer_norm\.(.*)', key):
            out[f'stages.{m.group(1)}.norm.{m.group(2)}'] = value
        elif key.startswith('classifier.'):
            out['head.' + key[len('classifier.'):]] = value
        else:
            out[key] = value  # left for the key check to report
    out.update(_stacked_kv(pending))
    return out


def convert_official_v2(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps the official PVTv2 keys (``patch_embed1``, ``block1.0``, ``norm1``...) to pvt_mm's."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if m := re.match(r'patch_embed(\d+)\.(.*)', key):
            out[f'stages.{int(m.group(1)) - 1}.patch_embed.{m.group(2)}'] = value
        elif m := re.match(r'block(\d+)\.(\d+)\.(.*)', key):
            rest = m.group(3).replace('mlp.dwconv.dwconv.', 'mlp.dwconv.')
            out[f'stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}.{rest}'] = value
        elif m := re.match(r'norm(\d+)\.(.*)', key):
            out[f'stages.{int(m.group(1)) - 1}.norm.{m.group(2)}'] = value
        else:
            out[key] = value  # the head, or left for the key check to report
    return out


def convert_timm_v2(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps timm's ``pvt_v2_*`` keys (stage 1's ``patch_embed``, the later stages'
    ``downsample``) to pvt_mm's."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith('patch_embed.'):
            key = 'stages.0.' + key
        elif m := re.match(r'stages\.(\d+)\.downsample\.(.*)', key):
            key = f'stages.{m.group(1)}.patch_embed.{m.group(2)}'
        out[key] = value
    return out


def to_official_v2(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps pvt_mm's PVTv2 keys back to the official layout (the inverse of
    :func:`convert_official_v2`)."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if m := re.match(r'stages\.(\d+)\.patch_embed\.(.*)', key):
            out[f'patch_embed{int(m.group(1)) + 1}.{m.group(2)}'] = value
        elif m := re.match(r'stages\.(\d+)\.blocks\.(\d+)\.(.*)', key):
            rest = m.group(3).replace('mlp.dwconv.', 'mlp.dwconv.dwconv.')
            out[f'block{int(m.group(1)) + 1}.{m.group(2)}.{rest}'] = value
        elif m := re.match(r'stages\.(\d+)\.norm\.(.*)', key):
            out[f'norm{int(m.group(1)) + 1}.{m.group(2)}'] = value
        elif key.startswith('head.'):
            out[key] = value
        else:
            raise LayoutError(f'to_official_v2: {key!r} is not a pvt_mm PVTv2 key.')
    return out


def to_timm_v2(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps pvt_mm's PVTv2 keys to timm's ``pvt_v2_*`` (the inverse of :func:`convert_timm_v2`)."""
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if key.startswith('stages.0.patch_embed.'):
            key = key[len('stages.0.'):]
        elif m := re.match(r'stages\.(\d+)\.patch_embed\.(.*)', key):
            key = f'stages.{m.group(1)}.downsample.{m.group(2)}'
        out[key] = value
    return out


def to_official(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Maps pvt_mm's keys back to the official layout (the inverse of :func:`convert_official`).

    The class token's row goes back in front of the last position embedding: the
    classifier's own, or zeros for a backbone (the official code always has the row), so that
    the result loads into the official code and into mmdet's ``pvt_convert``.
    """
    last = max((int(m.group(1)) for k in state_dict
                if (m := re.match(r'stages\.(\d+)\.', k))), default=-1)
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if m := re.match(r'stages\.(\d+)\.patch_embed\.(.*)', key):
            out[f'patch_embed{int(m.group(1)) + 1}.{m.group(2)}'] = value
        elif m := re.match(r'stages\.(\d+)\.pos_embed$', key):
            stage = int(m.group(1))
            if stage == last:
                row = state_dict.get('cls_pos_embed', value.new_zeros(1, 1, value.shape[-1]))
                value = torch.cat([row, value], dim=1)
            out[f'pos_embed{stage + 1}'] = value
        elif m := re.match(r'stages\.(\d+)\.blocks\.(\d+)\.(.*)', key):
            out[f'block{int(m.group(1)) + 1}.{m.group(2)}.{m.group(3)}'] = value
        elif key == 'cls_pos_embed':
            continue
        elif key.startswith(CLASSIFIER_KEYS):
            out[key] = value
        else:
            raise LayoutError(f'to_official: {key!r} is not a pvt_mm backbone or classifier key.')
    return out


_CONVERTERS = {'pvt_mm': dict, 'official': convert_official, 'mmdet': convert_mmdet,
               'hf': convert_hf, 'pvt_mm_v2': dict, 'official_v2': convert_official_v2,
               'timm_v2': convert_timm_v2, 'mmdet_v2': convert_mmdet, 'hf_v2': convert_hf_v2}


def convert_state_dict(state_dict: Mapping[str, Tensor],
                       prefix: str | None = None) -> tuple[dict[str, Tensor], str]:
    """Strips wrappers' prefixes, detects the layout and converts to pvt_mm's keys.

    Returns:
        The converted state dict and the detected layout name.

    Raises:
        LayoutError: no keys under ``prefix``, or no layout pvt_mm reads.
    """
    sd = strip_prefixes(dict(state_dict), prefix)
    if not sd:
        raise LayoutError(f'no keys under the prefix {prefix!r}.')
    layout = detect_layout(sd)
    return _CONVERTERS[layout](sd), layout


def summarise_keys(items: list[str], limit: int = 8) -> str:
    """The first ``limit`` keys, comma-separated, and how many more there are."""
    shown = ', '.join(items[:limit])
    return shown + (f', ... ({len(items) - limit} more)' if len(items) > limit else '')


__all__ = ['CLASSIFIER_KEYS', 'LayoutError', 'strip_prefixes',
           'detect_layout', 'convert_official', 'convert_mmdet', 'convert_hf', 'convert_hf_v2',
           'convert_official_v2', 'convert_timm_v2', 'to_official', 'to_official_v2', 'to_timm_v2',
           'convert_state_dict',
           'summarise_keys']
