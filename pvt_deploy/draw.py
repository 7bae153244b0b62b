"""Predictions drawn on the original image with OpenCV: boxes with their class and score,
label maps blended in the dataset's palette, the top classes written in a corner."""
from __future__ import annotations

import cv2
import numpy as np

from .model import Prediction, _name


def _palette(n: int, palette: list | None) -> np.ndarray:
    if palette and len(palette) >= n:
        return np.asarray(palette, np.uint8)[:, ::-1]  # RGB -> BGR
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (max(n, 1), 3), dtype=np.uint8)


def _text(img: np.ndarray, text: str, x: int, y: int, scale: float) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = max(y, th + base)
    cv2.rectangle(img, (x, y - th - base), (x + tw, y), (40, 40, 40), -1)
    cv2.putText(img, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)


def draw(image: np.ndarray, pred: Prediction, classes: list[str], *, score_thr: float = 0.3,
         topk: int = 5, palette: list | None = None) -> np.ndarray:
    """A copy of ``image`` (BGR) with ``pred`` drawn on it."""
    out = image.copy()
    scale = max(0.4, min(out.shape[:2]) / 400)
    if pred.task == 'det':
        colours = _palette(max(len(classes), 1), palette)
        for i, (box, score, label) in enumerate(zip(pred.boxes, pred.scores, pred.labels)):
            if score < score_thr:
                continue
            if pred.masks is not None:
                region = pred.masks[i]
                colour = colours[int(label) % len(colours)].astype(np.float32)
                out[region] = (0.5 * out[region] + 0.5 * colour).astype(np.uint8)
            x1, y1, x2, y2 = (int(round(float(v))) for v in box)
            cv2.rectangle(out, (x1, y1), (x2, y2), (0, 230, 255), max(1, int(2 * scale)))
            _text(out, f'{_name(classes, label)} {score:.2f}', x1, y1, 0.5 * scale)
    elif pred.task == 'seg':
        colours = _palette(max(len(classes), int(pred.labels.max()) + 1), palette)
        mask = colours[np.clip(pred.labels, 0, len(colours) - 1)]
        out = cv2.addWeighted(out, 0.4, mask, 0.6, 0)
    else:
        order = np.argsort(-pred.probabilities)[:topk]
        for row, i in enumerate(order):
            _text(out, f'{_name(classes, i)} {pred.probabilities[i]:.3f}', 2,
                  int((row + 1) * 18 * scale), 0.5 * scale)
    return out


def summary(pred: Prediction, classes: list[str], score_thr: float = 0.3, topk: int = 5) -> str:
    """One line about the prediction, as tools/demo.py prints it."""
    if pred.task == 'det':
        keep = pred.scores >= score_thr
        found = [f'{_name(classes, l)} {s:.2f}' for l, s in
                 zip(pred.labels[keep], pred.scores[keep])]
        return f'{len(found)} detections above {score_thr}: {", ".join(found) or "none"}'
    if pred.task == 'seg':
        ids, counts = np.unique(pred.labels, return_counts=True)
        share = sorted(zip(counts, ids), reverse=True)[:topk]
        return 'label map: ' + ', '.join(f'{_name(classes, i)} {c / pred.labels.size:.1%}'
                                         for c, i in share)
    order = np.argsort(-pred.probabilities)[:topk]
    return f'top {len(order)} classes: ' + ', '.join(
        f'{_name(classes, i)} {pred.probabilities[i]:.3f}' for i in order)


__all__ = ['draw', 'summary']
