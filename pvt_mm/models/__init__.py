from .pvt import PVT

__all__ = ['PVT']
