"""ONNX export of pvt_mm's models (:mod:`.export`, :mod:`.export_model`) and predictions from
the exported files with onnxruntime (:mod:`.onnx_inference`)."""
from ..tasks import NotExportableError
from .export import (META_CLASSES, META_END2END, META_MODEL, META_OUTPUTS, META_PART, META_TASK,
                     export_onnx, exportable_part, read_metadata)

__all__ = ['NotExportableError', 'exportable_part', 'export_onnx', 'read_metadata',
           'META_PART', 'META_TASK', 'META_OUTPUTS', 'META_MODEL', 'META_CLASSES',
           'META_END2END']
