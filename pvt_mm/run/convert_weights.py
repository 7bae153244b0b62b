"""Writing any published PVT or PVTv2 checkpoint in pvt_mm's key layout, checked strictly
first, as ``tools/model_converters/pvt_to_pvt_mm.py`` does: a network's weights as a plain
state dict, a whole model's (a detector, segmentor or classifier) as mmengine's checkpoint."""
from __future__ import annotations

import io
from typing import Any


def convert_weights(src: str, dst: str, *, arch: str | None = None,
                    prefix: str | None = None, config: str | None = None,
                    cfg_options: dict | None = None) -> str:
    """Reads ``src`` (any layout :mod:`pvt_mm.network.weight_layouts` knows), checks it and
    writes it in pvt_mm's layout to ``dst`` atomically. Returns a one-line summary.

    A whole model (``backbone.`` keys beside others: what mmengine, mmdet 2 or mmpretrain
    wrote for a detector, segmentor or classifier) is written whole, as mmengine's
    checkpoint (``meta`` kept, ``state_dict``; ``.pth`` only): its backbone checked against
    a network of its family and arch, and with ``config`` the whole state dict against the
    config's model. Anything else (or any file with ``prefix``: the keys under it) is a
    network's weights, checked against a network of its family (PVT or PVTv2, from the
    layout) and arch (read off the weights unless given; a classifier if it has a head) and
    written as a plain state dict (``.pth`` or ``.safetensors``).

    Raises:
        CheckpointError: unreadable, in no PVT layout, or not fitting (keys named).
        ValueError: a whole model asked for as ``.safetensors``.
    """
    from ..network.model_weights import read_model_checkpoint, split_backbone
    from ..network.weights import CheckpointError, check_state_dict, load_pvt_state_dict

    if prefix is None:
        weights = read_model_checkpoint(src)
        part, rest = split_backbone(weights.state_dict)
        if part and rest:
            return _write_model(weights, src, dst, arch, config, cfg_options)
    elif config:
        raise CheckpointError('--prefix takes a network out of a file; --config checks a '
                              'whole model: give one of them.')
    state_dict, layout = load_pvt_state_dict(src, prefix=prefix)
    model, summary = _network(state_dict, src, layout, arch)
    check_state_dict(model, state_dict, src)
    _save(dst, state_dict)
    return f'{src} ({summary}): {len(state_dict)} tensors -> {dst}'


def _network(state_dict: dict, src: str, layout: str, arch: str | None) -> tuple[Any, str]:
    """A network of the weights' family and arch on the meta device (a classifier if they
    have a head), and how to name it."""
    import torch

    from ..network.families import FAMILIES, LAYOUT_FAMILY
    from ..network.weights import infer_arch
    family = LAYOUT_FAMILY[layout]
    arch = arch or infer_arch(state_dict, src, family)
    head = state_dict.get('head.weight')
    with torch.device('meta'):  # the key and shape check needs no memory
        model = FAMILIES[family].network(arch, num_classes=head.shape[0] if head is not None
                                         else 0)
    return model, f'{layout} layout, {family}-{arch}'


def _write_model(weights: Any, src: str, dst: str, arch: str | None, config: str | None,
                 cfg_options: dict | None) -> str:
    """A whole model written as mmengine's checkpoint, its backbone (and with ``config``
    everything) checked strictly first."""
    from ..network.model_weights import ModelCheckpoint, split_backbone, with_backbone
    from ..network.weight_layouts import convert_state_dict
    from ..network.weights import check_state_dict, fit_classifier_keys
    if not dst.endswith(('.pth', '.pt')):
        raise ValueError(f'{src} holds a whole model (backbone., and other keys): it is written '
                         f"as mmengine's checkpoint (meta and state_dict), a .pth file, which "
                         f"mmdet's, mmseg's, mmpretrain's and pvt_mm's tools read; got {dst!r}. "
                         'To write the backbone alone, pass --prefix backbone.')
    part, rest = split_backbone(weights.state_dict)
    layout = weights.layout or convert_state_dict(part)[1]
    network, summary = _network(part, src, layout, arch)
    part = fit_classifier_keys(network, part, src)
    check_state_dict(network, part, src)
    state_dict = with_backbone(part, rest)
    checked = 'backbone checked'
    if config:
        from .config import load_config
        cfg, task = load_config(config, cfg_options)
        state_dict = ModelCheckpoint(src, state_dict).fitted(task.build_eval_model(cfg))
        checked = f'checked against {config}'
    _save(dst, {'meta': weights.meta, 'state_dict': state_dict})
    converted = f'backbone from the {weights.layout} layout' if weights.layout else \
        'already in pvt_mm\'s layout'
    return (f'{src} (whole model, {summary}, {converted}, {checked}): {len(state_dict)} '
            f'tensors -> {dst}')


def _save(dst: str, content: dict) -> None:
    import torch

    from .fileio import atomic_write
    if dst.endswith('.safetensors'):
        from safetensors.torch import save
        data = save({k: v.contiguous() for k, v in content.items()})
    else:
        buffer = io.BytesIO()
        torch.save(content, buffer)
        data = buffer.getvalue()
    atomic_write(dst, data)


__all__ = ['convert_weights']
