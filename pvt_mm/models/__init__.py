from .pvt import PVT
from .timm_pvt import TimmPVT

__all__ = ['PVT', 'TimmPVT', 'Trans2SegHead']


def __getattr__(name):
    # Trans2SegHead subclasses mmseg's BaseDecodeHead, and importing it imports all of
    # mmseg.models (about 1 s); only segmentation configs need it. The registry's
    # `locations` import it when a config names a pvt_mm model (pvt_mm/registry.py).
    if name == 'Trans2SegHead':
        from .trans2seg_head import Trans2SegHead
        return Trans2SegHead
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
