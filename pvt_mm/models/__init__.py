from .pvt import PVT
from .timm_pvt import TimmPVT
from .trans2seg_head import Trans2SegHead

__all__ = ['PVT', 'TimmPVT', 'Trans2SegHead']
