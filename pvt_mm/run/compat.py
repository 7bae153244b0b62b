"""Fixes that make the pinned OpenMMLab stack work on current PyTorch, each with its reason.

:func:`apply` runs on ``import pvt_mm`` and is idempotent. It imports none of mmcv, mmdet,
mmseg or mmpretrain: a fix to one of them is applied when that module is first imported.

1. mmengine 0.10.7 reads checkpoints with ``torch.load(path, map_location=...)``. Since
   torch 2.6 that means ``weights_only=True``, which refuses the non-tensor objects that
   mmengine itself writes into a training checkpoint, so ``--resume`` and testing a
   checkpoint that ``tools/train.py`` wrote both fail. mmengine's local reader is replaced by
   :func:`pvt_mm.network.safe_load.load_local`, which keeps ``weights_only=True`` and allows
   exactly those types. mmengine's http(s) reader goes through
   ``torch.hub.load_state_dict_from_url``, whose ``weights_only`` still defaults to False: it
   is replaced by :func:`~pvt_mm.network.safe_load.load_url`, the same restricted read of
   the downloaded file. A third scheme, ``hf-hub:REPO_ID[@REVISION]``, reads a Hugging Face
   hub repository's weights through huggingface_hub (:mod:`pvt_mm.network.hub`), so
   ``load_from`` and every other checkpoint mmengine reads take hub ids too.

2. mmengine 0.10.7's ``is_installed`` imports and *reloads* ``pkg_resources`` on every call,
   and the setuptools that the mmcv build needs (< 82, see requirements/constraints.txt)
   warns "pkg_resources is deprecated as an API" on every load: four warnings at each
   tool start that the user can do nothing about. That one warning is filtered; mmengine
   still gets its answer from pkg_resources.

3. mmseg 1.2.2's ``SegLocalVisualizer`` draws its labels with ``cv2.rectangle`` into
   ``np.zeros_like(image)``, which keeps the image's memory layout. mmseg's own
   ``tools/misc/browse_dataset.py`` hands it a channel-strided view (a permuted tensor,
   channels reordered by indexing), and every OpenCV that runs with numpy 2 (4.10 to 5.0)
   refuses that layout: "Layout of the output array img is incompatible with cv::Mat". The
   image is made C-contiguous on the way in: same pixels, a layout OpenCV accepts. The fix
   is applied at once when mmseg's visualizer is already imported, else by an import hook
   the moment it is (mmseg's own tools never pass through pvt_mm's config loader).

4. mmengine resolves a config's ``mmdet::`` / ``mmseg::`` / ``mmpretrain::`` base through
   ``MODULE2PACKAGE``, a table from the module to the distribution that installs it
   (``mmseg`` -> ``mmsegmentation``), and refuses the base when that distribution is not
   installed. VBTI's maintained fork installs the same modules as ``onedl-*`` distributions,
   and its mmengine names ``onedl-mmsegmentation`` nowhere: every ``mmseg::`` config fails
   there. Where the named distribution is missing and exactly one installed distribution
   provides the module, the table names that one (nothing changes on OpenMMLab's own
   releases).
"""
from __future__ import annotations

import functools
import importlib.abc
import sys
import warnings
from typing import Any

_APPLIED = False
SEG_VISUALIZER_MODULE = 'mmseg.visualization.local_visualizer'


def _patch_mmengine_checkpoint_loading() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader

    from ..network.safe_load import load_local, load_url
    from ..network.weights import load_from_hf_hub
    CheckpointLoader.register_scheme(prefixes='', loader=load_local, force=True)
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), loader=load_url,
                                     force=True)
    CheckpointLoader.register_scheme(prefixes='hf-hub:', loader=load_from_hf_hub, force=True)


CONFIG_SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def _map_config_scopes_to_installed_distributions() -> None:
    from importlib.metadata import PackageNotFoundError, distribution, packages_distributions

    from mmengine.config.utils import MODULE2PACKAGE
    owners = None
    for module in CONFIG_SCOPES:
        try:
            distribution(MODULE2PACKAGE.get(module, module))
            continue
        except PackageNotFoundError:
            pass
        owners = packages_distributions() if owners is None else owners
        installed = sorted(set(owners.get(module, ())))
        if len(installed) == 1:
            MODULE2PACKAGE[module] = installed[0]


def _silence_pkg_resources_deprecation() -> None:
    warnings.filterwarnings('ignore', message='pkg_resources is deprecated as an API',
                            category=UserWarning)


def contiguous_seg_visualizer_images(module: Any) -> None:
    """Makes ``module.SegLocalVisualizer.add_datasample`` hand OpenCV a C-contiguous image."""
    import numpy as np
    visualizer = module.SegLocalVisualizer
    add_datasample = visualizer.add_datasample
    if getattr(add_datasample, '_pvt_mm_contiguous', False):
        return

    @functools.wraps(add_datasample)
    def contiguous_add_datasample(self, name, image, *args, **kwargs):
        return add_datasample(self, name, np.ascontiguousarray(image), *args, **kwargs)

    contiguous_add_datasample._pvt_mm_contiguous = True
    visualizer.add_datasample = contiguous_add_datasample


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``fix(module)`` right after the module ``name`` is first executed.

    It finds the module's spec through the other finders and wraps the loader's
    ``exec_module``; every other import passes straight by.
    """

    def __init__(self, name: str, fix: Any) -> None:
        self.name, self.fix = name, fix

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader, fix = spec.loader, self.fix
        if loader is None or not hasattr(loader, 'exec_module'):
            return spec

        class FixingLoader(importlib.abc.Loader):
            def create_module(self, spec: Any) -> Any:
                return loader.create_module(spec)

            def exec_module(self, module: Any) -> None:
                loader.exec_module(module)
                fix(module)

            def __getattr__(self, attr: str) -> Any:  # get_source, is_package, ...
                return getattr(loader, attr)

        spec.loader = FixingLoader()
        sys.meta_path.remove(self)  # once is all it takes
        return spec


def fix_after_import(name: str, fix: Any) -> None:
    """``fix(module)`` now if ``name`` is imported already, else as soon as it is."""
    if name in sys.modules:
        fix(sys.modules[name])
    elif not any(isinstance(f, _AfterImport) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(name, fix))


def apply() -> None:
    """Applies every fix once."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_mmengine_checkpoint_loading()
    _map_config_scopes_to_installed_distributions()
    _silence_pkg_resources_deprecation()
    fix_after_import(SEG_VISUALIZER_MODULE, contiguous_seg_visualizer_images)
    _APPLIED = True


__all__ = ['apply', 'fix_after_import', 'contiguous_seg_visualizer_images']
