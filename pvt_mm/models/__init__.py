from .pvt import PVT
from .trans2seg_head import Trans2SegHead

__all__ = ['PVT', 'Trans2SegHead']
