"""pvt_deploy: pvt_mm's end-to-end ONNX graphs (``export_onnx.py --end2end``) run with
onnxruntime or OpenVINO, with NumPy and OpenCV and without torch or OpenMMLab
(requirements/deploy.txt).

    from pvt_deploy import Model
    pred = Model('retinanet.onnx').predict('image.jpg')  # boxes in the image's pixels
"""
from .draw import draw, summary
from .image import apply_steps, read
from .model import Model, Prediction, read_metadata

__all__ = ['Model', 'Prediction', 'read_metadata', 'read', 'apply_steps', 'draw', 'summary']
