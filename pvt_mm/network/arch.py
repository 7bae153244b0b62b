"""The arch tables: PVT v1's sizes (paper Table 1) and PVTv2's (b0-b5, b2-li: the official
code's), and custom arch dicts checked against the same keys.

The networks (:mod:`pvt_mm.network.pvt`, :mod:`pvt_mm.network.pvt_v2`) and the weights loader
(:mod:`pvt_mm.network.weights`) read these tables; neither imports the other for them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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


def resolve_arch(arch: str | Mapping[str, Sequence[int]], *, table: Mapping[str, dict] = None,
                 keys: Sequence[str] = ARCH_KEYS, family: str = 'PVT',
                 flags: Sequence[str] = ()) -> dict[str, Any]:
    """Returns the arch table entry for a size name, or validates a custom arch dict.

    Args:
        arch: a name of ``table`` (PVT v1's ``'tiny'`` ... ``'large'`` by default), or a
            dict with the keys of ``keys``, each a sequence with one value per stage, and
            optionally the boolean ``flags`` (PVTv2's ``linear``).

    Raises:
        ValueError: unknown name, missing or extra keys, lists of different lengths,
            non-positive values, or heads that do not divide the channels.
    """
    table = ARCH_SETTINGS if table is None else table
    if isinstance(arch, str):
        name = arch.lower().replace('-', '_')
        if name not in table:
            raise ValueError(f'Unknown {family} arch {arch!r}; valid names are '
                             f'{sorted(table)} or a dict with keys {list(keys)}.')
        return dict(table[name])
    if not isinstance(arch, Mapping):
        raise TypeError(f'{family} arch must be a name or a dict, got {type(arch).__name__}.')
    missing = [k for k in keys if k not in arch]
    extra = [k for k in arch if k not in keys and k not in flags]
    if missing or extra:
        raise ValueError(f'Custom {family} arch must have exactly the keys {list(keys)}'
                         f'{f" (and optionally {list(flags)})" if flags else ""}; '
                         f'missing {missing}, unexpected {extra}.')
    spec: dict[str, Any] = {k: tuple(arch[k]) for k in keys}
    lengths = {k: len(v) for k, v in spec.items()}
    if len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
        raise ValueError(f'Custom {family} arch lists must all have one entry per stage (same, '
                         f'non-zero length); got lengths {lengths}.')
    for key, values in spec.items():
        if any(not isinstance(v, (int, float)) or v <= 0 for v in values):
            raise ValueError(f'Custom {family} arch {key!r} must hold positive numbers, got '
                             f'{values}.')
    for i, (dim, heads) in enumerate(zip(spec['embed_dims'], spec['num_heads'])):
        if dim % heads:
            raise ValueError(f'Custom {family} arch stage {i + 1}: num_heads={heads} does not '
                             f'divide embed_dims={dim}.')
    for flag in flags:
        spec[flag] = bool(arch.get(flag, False))
    return spec


def arch_name(depths: Sequence[int]) -> str | None:
    """The Table 1 size name with these stage depths, or None."""
    return next((name for name, arch in ARCH_SETTINGS.items()
                 if arch['depths'] == tuple(depths)), None)


# PVTv2 (the official pvt_v2_b0 ... b5, b2_li): heads and SR ratios shared, no patch sizes
# (7x7 stride 4, then 3x3 stride 2, overlapping), ``linear`` for linear SRA.
V2_KEYS = ('embed_dims', 'depths', 'num_heads', 'mlp_ratios', 'sr_ratios')
V2_FLAGS = ('linear',)
_V2 = dict(embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
           sr_ratios=(8, 4, 2, 1), linear=False)
ARCH_SETTINGS_V2: dict[str, dict[str, Any]] = {
    'b0': dict(_V2, embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2)),
    'b1': dict(_V2, depths=(2, 2, 2, 2)),
    'b2': dict(_V2, depths=(3, 4, 6, 3)),
    'b2_li': dict(_V2, depths=(3, 4, 6, 3), linear=True),
    'b3': dict(_V2, depths=(3, 4, 18, 3)),
    'b4': dict(_V2, depths=(3, 8, 27, 3)),
    'b5': dict(_V2, depths=(3, 6, 40, 3), mlp_ratios=(4, 4, 4, 4)),
}


def resolve_arch_v2(arch: str | Mapping[str, Any]) -> dict[str, Any]:
    """:func:`resolve_arch` for PVTv2: ``'b0'`` ... ``'b5'``, ``'b2_li'`` (or ``'b2-li'``), or
    a dict with :data:`V2_KEYS` and optionally ``linear``."""
    return resolve_arch(arch, table=ARCH_SETTINGS_V2, keys=V2_KEYS, family='PVTv2',
                        flags=V2_FLAGS)


def arch_name_v2(arch: Mapping[str, Any]) -> str | None:
    """The PVTv2 size name of an arch (embed dims, depths, MLP ratios, linear), or None."""
    fields = ('embed_dims', 'depths', 'mlp_ratios', 'linear')
    return next((name for name, spec in ARCH_SETTINGS_V2.items()
                 if all(tuple(spec[f]) == tuple(arch[f]) if f != 'linear'
                        else spec[f] == arch[f] for f in fields)), None)


__all__ = ['ARCH_KEYS', 'ARCH_SETTINGS', 'resolve_arch', 'arch_name', 'V2_KEYS',
           'ARCH_SETTINGS_V2', 'resolve_arch_v2', 'arch_name_v2']
