"""pvt_mm: the Pyramid Vision Transformer as a plugin backbone for MMDetection and MMSegmentation."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_version() -> str:
    """Reads ``__version__`` from pvt_mm/version.py without importing the package."""
    scope: dict = {}
    exec((ROOT / 'pvt_mm' / 'version.py').read_text(), scope)
    return scope['__version__']


setup(
    name='pvt_mm',
    version=read_version(),
    description='Pyramid Vision Transformer (PVT v1) backbone for MMDetection 3.x and MMSegmentation 1.x',
    long_description=(ROOT / 'README.md').read_text() if (ROOT / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['pvt_mm', 'pvt_mm.*']),
    install_requires=[
        'torch>=2.1',
        'mmengine>=0.10.0,<1.0',
        'mmcv>=2.0.0,<2.2.0',
        'mmdet>=3.0.0,<3.4.0',
        'mmsegmentation>=1.0.0,<1.3.0',
        'mmpretrain>=1.0.0,<1.3.0',
        'timm>=1.0',
        'safetensors',
    ],
    # tools/deployment/: ONNX export (torch.export + onnxscript) and onnxruntime.
    extras_require={'tests': ['pytest', 'hypothesis'],
                    'deploy': ['onnx', 'onnxscript', 'onnxruntime']},
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
