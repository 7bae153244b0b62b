"""pvt_mm: the Pyramid Vision Transformer for MMDetection, MMSegmentation, MMPretrain and timm."""
import os
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_version() -> str:
    """Reads ``__version__`` from pvt_mm/version.py without importing the package."""
    scope: dict = {}
    exec((ROOT / 'pvt_mm' / 'version.py').read_text(), scope)
    return scope['__version__']


# Two OpenMMLab lines install the same modules (mmcv, mmengine, mmdet, mmseg, mmpretrain) under
# different distribution names: OpenMMLab's own releases (the default) and VBTI's maintained
# onedl-* fork. PVT_MM_STACK=onedl at install time asks for the fork's (scripts/setup_env.sh
# sets it for STACK=onedl; docs/install.md). mmcv is built from source with its ops.
STACKS = {
    'upstream': dict(mmengine='mmengine>=0.10.0,<1.0', mmcv='mmcv>=2.0.0,<2.2.0',
                     mmdet='mmdet>=3.0.0,<3.4.0', mmseg='mmsegmentation>=1.0.0,<1.3.0',
                     mmpretrain='mmpretrain>=1.0.0,<1.3.0'),
    'onedl': dict(mmengine='onedl-mmengine>=0.10.12,<1.0', mmcv='onedl-mmcv>=2.3.6,<2.4',
                  mmdet='onedl-mmdetection>=3.5.1,<3.6', mmseg='onedl-mmsegmentation>=1.4.2,<1.5',
                  mmpretrain='onedl-mmpretrain>=1.3.6,<1.4'),
}
STACK = os.environ.get('PVT_MM_STACK', 'upstream')
if STACK not in STACKS:
    raise SystemExit(f'PVT_MM_STACK={STACK!r}: choose one of {sorted(STACKS)}.')
MM = STACKS[STACK]

# The network layer needs torch, timm and mmengine only; each OpenMMLab task is an extra.
EXTRAS = {
    'det': [MM['mmcv'], MM['mmdet'], 'pycocotools'],
    'seg': [MM['mmcv'], MM['mmseg'], 'ftfy', 'regex'],
    'cls': [MM['mmcv'], MM['mmpretrain']],
    # tools/deployment/: ONNX export (torch.export + onnxscript) and onnxruntime; pvt_deploy's
    # runtimes and its image reading (OpenCV; mmcv's opencv-python, so that the two do not
    # both install cv2). pvt_deploy alone, without torch: pip install ./pvt_deploy.
    # nncf: INT8 post-training quantisation (tools/deployment/quantize.py); not needed to run
    # the quantised file.
    'deploy': ['onnx', 'onnxscript', 'onnxruntime', 'openvino', 'nncf', 'numpy', 'opencv-python'],
    # transformers: its own Pvt classes write the HF-layout files the tests load.
    # pytest-xdist: make test runs a worker per core.
    'tests': ['pytest', 'pytest-xdist', 'hypothesis', 'transformers'],
}
EXTRAS['all'] = sorted({r for k in ('det', 'seg', 'cls', 'deploy') for r in EXTRAS[k]}
                       | {'tensorboard'})

setup(
    name='pvt_mm',
    version=read_version(),
    description='Pyramid Vision Transformer for MMDetection 3.x, MMSegmentation 1.x, '
                'MMPretrain 1.x and timm',
    long_description=(ROOT / 'README.md').read_text() if (ROOT / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    # pvt_deploy: the end-to-end ONNX runner, importable without torch; it also installs alone
    # from its own metadata (pvt_deploy/pyproject.toml).
    packages=find_packages(include=['pvt_mm', 'pvt_mm.*', 'pvt_deploy']),
    install_requires=[
        'torch>=2.1',
        'timm>=1.0',
        MM['mmengine'],
        'safetensors',
        'huggingface_hub',  # hf-hub: weights ids (pvt_mm/network/hub.py)
    ],
    extras_require=EXTRAS,
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
