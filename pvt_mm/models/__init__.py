from .pvt import ARCH_SETTINGS, PVT, resolve_arch

__all__ = ['PVT', 'ARCH_SETTINGS', 'resolve_arch']
