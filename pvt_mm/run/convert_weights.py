"""Writing any published PVT or PVTv2 checkpoint in pvt_mm's key layout, checked strictly
first, as ``tools/model_converters/pvt_to_pvt_mm.py`` does."""
from __future__ import annotations

import io


def convert_weights(src: str, dst: str, *, arch: str | None = None,
                    prefix: str | None = None) -> str:
    """Reads ``src`` (any layout :mod:`pvt_mm.network.weight_layouts` knows), checks it
    against a network of its family (PVT or PVTv2, from the layout) and arch (read off the
    weights unless given; a classifier if it has a head) and writes a plain state dict to
    ``dst`` (``.pth``, or ``.safetensors``) atomically. Returns a one-line summary."""
    import torch

    from ..network.weights import check_state_dict, infer_arch, load_pvt_state_dict
    from ..network.families import FAMILIES, LAYOUT_FAMILY
    from .fileio import atomic_write

    state_dict, layout = load_pvt_state_dict(src, prefix=prefix)
    family = LAYOUT_FAMILY[layout]
    arch = arch or infer_arch(state_dict, src, family)
    head = state_dict.get('head.weight')
    network = FAMILIES[family].network
    with torch.device('meta'):  # the key and shape check needs no memory
        model = network(arch, num_classes=head.shape[0] if head is not None else 0)
    check_state_dict(model, state_dict, src)
    if dst.endswith('.safetensors'):
        from safetensors.torch import save
        data = save({k: v.contiguous() for k, v in state_dict.items()})
    else:
        buffer = io.BytesIO()
        torch.save(state_dict, buffer)
        data = buffer.getvalue()
    atomic_write(dst, data)
    return f'{src} ({layout} layout, {family}-{arch}): {len(state_dict)} tensors -> {dst}'


__all__ = ['convert_weights']
