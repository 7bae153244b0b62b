"""pvt_deploy: pvt_mm's end-to-end ONNX graphs (``export_onnx.py --end2end``) run with
onnxruntime or OpenVINO, with NumPy and OpenCV and without torch or OpenMMLab
(requirements/deploy.txt). The contract with the exporter is :mod:`pvt_deploy.schema`; the
runtimes are :mod:`pvt_deploy.runtimes`; what differs per task is :mod:`pvt_deploy.tasks`.

    from pvt_deploy import Model
    pred = Model('retinanet.onnx').predict('image.jpg')  # boxes in the image's pixels
"""
from .draw import draw, summary
from .image import apply_steps, read
from .model import Model, Prediction, read_metadata
from .runtimes import RUNTIMES, Runtime, open_runtime
from .schema import SchemaError

__all__ = ['Model', 'Prediction', 'read_metadata', 'read', 'apply_steps', 'draw', 'summary',
           'Runtime', 'RUNTIMES', 'open_runtime', 'SchemaError']
