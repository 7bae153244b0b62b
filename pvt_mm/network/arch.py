"""The PVT sizes of the paper's Table 1, and custom arch dicts checked against the same keys.

Both the network (:mod:`pvt_mm.network.pvt`) and the weights loader (:mod:`pvt_mm.network.checkpoint`)
read this table; neither imports the other for it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

ARCH_KEYS = ('patch_sizes', 'embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios')

# Table 1: the four sizes share everything but the depths.
_SHARED = dict(
    patch_sizes=(4, 2, 2, 2),
    embed_dims=(64, 128, 320, 512),
    num_heads=(1, 2, 5, 8),
    mlp_ratios=(8, 8, 4, 4),
    sr_ratios=(8, 4, 2, 1),
)
ARCH_SETTINGS: dict[str, dict[str, tuple[int, ...]]] = {
    name: dict(_SHARED, depths=depths) for name, depths in (
        ('tiny', (2, 2, 2, 2)),
        ('small', (3, 4, 6, 3)),
        ('medium', (3, 4, 18, 3)),
        ('large', (3, 8, 27, 3)),
    )
}


def resolve_arch(arch: str | Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    """Returns the arch table entry for a size name, or validates a custom arch dict.

    Args:
        arch: ``'tiny'``, ``'small'``, ``'medium'``, ``'large'``, or a dict with the keys
            of :data:`ARCH_KEYS`, each a sequence with one value per stage.

    Raises:
        ValueError: unknown name, missing or extra keys, lists of different lengths,
            non-positive values, or heads that do not divide the channels.
    """
    if isinstance(arch, str):
        name = arch.lower()
        if name not in ARCH_SETTINGS:
            raise ValueError(f'Unknown PVT arch {arch!r}; valid names are '
                             f'{sorted(ARCH_SETTINGS)} or a dict with keys {list(ARCH_KEYS)}.')
        return dict(ARCH_SETTINGS[name])
    if not isinstance(arch, Mapping):
        raise TypeError(f'PVT arch must be a name or a dict, got {type(arch).__name__}.')
    missing = [k for k in ARCH_KEYS if k not in arch]
    extra = [k for k in arch if k not in ARCH_KEYS]
    if missing or extra:
        raise ValueError(f'Custom PVT arch must have exactly the keys {list(ARCH_KEYS)}; '
                         f'missing {missing}, unexpected {extra}.')
    spec = {k: tuple(arch[k]) for k in ARCH_KEYS}
    lengths = {k: len(v) for k, v in spec.items()}
    if len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
        raise ValueError(f'Custom PVT arch lists must all have one entry per stage (same, '
                         f'non-zero length); got lengths {lengths}.')
    for key, values in spec.items():
        if any(not isinstance(v, (int, float)) or v <= 0 for v in values):
            raise ValueError(f'Custom PVT arch {key!r} must hold positive numbers, got {values}.')
    for i, (dim, heads) in enumerate(zip(spec['embed_dims'], spec['num_heads'])):
        if dim % heads:
            raise ValueError(f'Custom PVT arch stage {i + 1}: num_heads={heads} does not divide '
                             f'embed_dims={dim}.')
    return spec


def arch_name(depths: Sequence[int]) -> str | None:
    """The Table 1 size name with these stage depths, or None."""
    return next((name for name, arch in ARCH_SETTINGS.items()
                 if arch['depths'] == tuple(depths)), None)


__all__ = ['ARCH_KEYS', 'ARCH_SETTINGS', 'resolve_arch', 'arch_name']
