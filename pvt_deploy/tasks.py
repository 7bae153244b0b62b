"""What differs between detection, segmentation and classification for the runner, one class
per task in one table (:data:`TASKS`, keyed as the schema names tasks): how a graph's outputs
become a prediction in the original image, how it is drawn, summed up in a line, written to
JSON and to extra files. The runner asks the table instead of branching on the task.
"""
from __future__ import annotations

import os.path as osp
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .image import Resized
from .postprocess import paste_masks, resize_logits, rle

if TYPE_CHECKING:
    from .model import Prediction


def name_of(classes: list[str], i: Any) -> str:
    return classes[int(i)] if int(i) < len(classes) else str(int(i))


def palette_of(n: int, palette: list | None) -> np.ndarray:
    """``n`` BGR colours: the dataset's palette, or seeded random ones."""
    if palette and len(palette) >= n:
        return np.asarray(palette, np.uint8)[:, ::-1]  # RGB -> BGR
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (max(n, 1), 3), dtype=np.uint8)


def put_text(img: np.ndarray, text: str, x: int, y: int, scale: float) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = max(y, th + base)
    cv2.rectangle(img, (x, y - th - base), (x + tw, y), (40, 40, 40), -1)
    cv2.putText(img, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)


class Task:
    """One task's part of the runner."""

    name = ''

    def finish(self, pred: Prediction, out: dict[str, np.ndarray], resized: Resized,
               meta: dict) -> None:
        """Fills ``pred`` from the graph's outputs, mapped back to the original image."""
        raise NotImplementedError

    def draw(self, img: np.ndarray, pred: Prediction, classes: list[str], scale: float, *,
             score_thr: float, topk: int, palette: list | None) -> np.ndarray:
        raise NotImplementedError

    def summary(self, pred: Prediction, classes: list[str], score_thr: float, topk: int) -> str:
        raise NotImplementedError

    def to_json(self, pred: Prediction, classes: list[str]) -> dict:
        return {}

    def save_extra(self, pred: Prediction, out_dir: str, stem: str) -> dict[str, str]:
        """Files beside the drawn image (name -> path)."""
        return {}


class Detection(Task):
    name = 'det'

    def finish(self, pred, out, resized, meta):
        sx, sy = resized.scale  # boxes to the original image, as mmdet's rescale=True
        pred.boxes = out['boxes'] / np.array([sx, sy, sx, sy], np.float32)
        pred.scores, pred.labels = out['scores'], out['labels']
        if 'masks' in out:  # pasted at the boxes in the original image, as mmdet does
            threshold = meta['constants']['rcnn'].get('mask_thr_binary', 0.5)
            pred.masks = paste_masks(out['masks'], pred.boxes, pred.image_shape, threshold)

    def draw(self, img, pred, classes, scale, *, score_thr, topk, palette):
        colours = palette_of(max(len(classes), 1), palette)
        for i, (box, score, label) in enumerate(zip(pred.boxes, pred.scores, pred.labels)):
            if score < score_thr:
                continue
            if pred.masks is not None:
                region = pred.masks[i]
                colour = colours[int(label) % len(colours)].astype(np.float32)
                img[region] = (0.5 * img[region] + 0.5 * colour).astype(np.uint8)
            x1, y1, x2, y2 = (int(round(float(v))) for v in box)
            cv2.rectangle(img, (x1, y1), (x2, y2), (0, 230, 255), max(1, int(2 * scale)))
            put_text(img, f'{name_of(classes, label)} {score:.2f}', x1, y1, 0.5 * scale)
        return img

    def summary(self, pred, classes, score_thr, topk):
        keep = pred.scores >= score_thr
        found = [f'{name_of(classes, l)} {s:.2f}' for l, s in
                 zip(pred.labels[keep], pred.scores[keep])]
        return f'{len(found)} detections above {score_thr}: {", ".join(found) or "none"}'

    def to_json(self, pred, classes):
        out = dict(bboxes=pred.boxes.tolist(), scores=pred.scores.tolist(),
                   labels=pred.labels.tolist(), classes=[name_of(classes, i) for i in pred.labels])
        if pred.masks is not None:
            out['masks'] = [rle(m) for m in pred.masks]
        return out


class Segmentation(Task):
    name = 'seg'

    def finish(self, pred, out, resized, meta):
        labels = out['labels']
        if labels.shape != tuple(pred.image_shape):  # mmseg: the logits resized, then arg-max
            constants = meta['constants']
            logits = resize_logits(out['logits'], pred.image_shape, constants['align_corners'])
            labels = logits.argmax(0) if len(logits) > 1 else \
                1 / (1 + np.exp(-logits[0])) > constants['threshold']
        pred.labels = labels.astype(np.int64)

    def draw(self, img, pred, classes, scale, *, score_thr, topk, palette):
        colours = palette_of(max(len(classes), int(pred.labels.max()) + 1), palette)
        mask = colours[np.clip(pred.labels, 0, len(colours) - 1)]
        return cv2.addWeighted(img, 0.4, mask, 0.6, 0)

    def summary(self, pred, classes, score_thr, topk):
        ids, counts = np.unique(pred.labels, return_counts=True)
        share = sorted(zip(counts, ids), reverse=True)[:topk]
        return 'label map: ' + ', '.join(f'{name_of(classes, i)} {c / pred.labels.size:.1%}'
                                         for c, i in share)

    def save_extra(self, pred, out_dir, stem):
        path = osp.join(out_dir, f'{stem}_labels.png')
        cv2.imwrite(path, pred.labels.astype('uint8' if pred.labels.max() < 256 else 'uint16'))
        return dict(label_map=path)


class Classification(Task):
    name = 'cls'

    def finish(self, pred, out, resized, meta):
        pred.probabilities = out['probabilities']

    def draw(self, img, pred, classes, scale, *, score_thr, topk, palette):
        order = np.argsort(-pred.probabilities)[:topk]
        for row, i in enumerate(order):
            put_text(img, f'{name_of(classes, i)} {pred.probabilities[i]:.3f}', 2,
                     int((row + 1) * 18 * scale), 0.5 * scale)
        return img

    def summary(self, pred, classes, score_thr, topk):
        order = np.argsort(-pred.probabilities)[:topk]
        return f'top {len(order)} classes: ' + ', '.join(
            f'{name_of(classes, i)} {pred.probabilities[i]:.3f}' for i in order)

    def to_json(self, pred, classes):
        return dict(probabilities=pred.probabilities.tolist(),
                    label=int(pred.probabilities.argmax()))


TASKS: dict[str, Task] = {t.name: t for t in (Detection(), Segmentation(), Classification())}

__all__ = ['Task', 'TASKS', 'Detection', 'Segmentation', 'Classification', 'name_of']
