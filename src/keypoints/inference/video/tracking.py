"""Faces followed through a video, each with a track id it keeps from frame to frame.

The face stage (YuNet) looks for faces only on every `detect_every`-th frame. In between, each face
is followed from its keypoints in the frame before, moved on by the step they made from the frame
before that: the crop is framed on them as `refine` frames a face (Detector.follow), one network
pass a face and no face stage, which is what makes a video cheaper than its frames as photos. On a face-stage frame each found face continues the track whose
keypoint box it overlaps most (IoU >= `match_iou`), or starts a new track; a track whose face the
face stage misses more than `max_misses` times in a row ends, and so does one whose keypoints leave
the frame. Whole-frame models (the seed's) cannot be framed on keypoints: with them the face stage
runs on every frame and tracks only carry the ids.
"""

from dataclasses import dataclass, field

import numpy as np

from keypoints.inference.detector import Detector, Face
from keypoints.inference.video.smoothing import OneEuroFilter


@dataclass
class Track:
    id: int
    points: np.ndarray  # (68, 2) the model's keypoints in the last frame, unsmoothed: the next frame is framed on them
    box: np.ndarray  # the face box relative to the keypoints' box: centre offset and size, in keypoint-box sides
    score: float | None  # the face stage's score when it last found this face
    misses: int = 0  # face-stage frames in a row that did not find it
    step: np.ndarray = field(default_factory=lambda: np.zeros(2))  # how far its keypoints moved (on average) from the frame before

    def move(self, points: np.ndarray) -> None:
        self.step, self.points = (points - self.points).mean(axis=0), points


def square(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The keypoints' bounding box as a square: centre and side (its longer side)."""
    low, high = points.min(axis=0), points.max(axis=0)
    return (low + high) / 2, float(max(high - low))


def iou(a: tuple[np.ndarray, float], b: tuple[np.ndarray, float]) -> float:
    """Intersection over union of two axis-aligned squares (centre, side)."""
    (ca, sa), (cb, sb) = a, b
    overlap = np.clip(np.minimum(ca + sa / 2, cb + sb / 2) - np.maximum(ca - sa / 2, cb - sb / 2), 0, None)
    inter = float(overlap.prod())
    return inter / (sa * sa + sb * sb - inter) if inter > 0 else 0.0


class Tracker:
    """`tracker(frame, t) -> [Face]` for consecutive BGR frames at times `t` (seconds): each face with
    its `track` id, keypoints smoothed over time (OneEuroFilter) unless `smoothing.enabled` is false.
    Knobs: keypoints/conf/video/default.yaml; keypoints.inference.video.load_tracker reads and checks them."""

    def __init__(self, detector: Detector, detect_every: int, max_misses: int, match_iou: float, max_faces: int,
                 smoothing: dict):
        self.detector, self.detect_every, self.max_misses = detector, detect_every, max_misses
        self.match_iou, self.max_faces = match_iou, max_faces
        self.followable = detector.frame is not None  # face-crop models can be framed on keypoints
        self.smooth = None
        if smoothing["enabled"]:
            self.smooth = OneEuroFilter(smoothing["min_cutoff"], smoothing["beta"], smoothing["d_cutoff"])
        self.tracks: list[Track] = []
        self.frames, self.next_id = 0, 0

    def __call__(self, frame: np.ndarray, t: float) -> list[Face]:
        look = not self.followable or not self.tracks or self.frames % self.detect_every == 0
        self.frames += 1
        if self.tracks and self.followable:
            # framed where each face would be if it kept moving as it did: a fast move stays in the crop
            ahead = np.stack([tr.points + tr.step for tr in self.tracks])
            for track, points in zip(self.tracks, self.detector.follow([frame] * len(self.tracks), ahead)):
                track.move(points)
            self.tracks = [tr for tr in self.tracks if _inside(tr.points, frame.shape)]
        if look:
            self._look(frame)
        self._drop_duplicates()
        return self._faces(frame, t)

    def _look(self, frame: np.ndarray) -> None:
        """The face stage's faces matched to the tracks; the rest start tracks (up to `max_faces`)."""
        found = sorted(self.detector.faces(frame), key=lambda f: -f.score)
        predicted = [self.detector.keypoint_square(f) for f in found]
        pairs = sorted(((iou(square(tr.points), p), i, j) for i, tr in enumerate(self.tracks)
                        for j, p in enumerate(predicted)), reverse=True)
        matched, taken = {}, set()
        for overlap, i, j in pairs:
            if overlap >= self.match_iou and i not in matched and j not in taken:
                matched[i] = j
                taken.add(j)
        kept, refreshed = [], []
        for i, track in enumerate(self.tracks):
            j = matched.get(i)
            track.misses = 0 if j is not None else track.misses + 1
            if j is None and (not self.followable or track.misses > self.max_misses):
                continue  # the track ends (a face that cannot be followed is only where the face stage finds it)
            kept.append(track)
            if j is not None:
                track.score = found[j].score
                if not self.followable:
                    refreshed.append((track, j))
        fresh = [j for j in range(len(found)) if j not in taken][:max(0, self.max_faces - len(kept))]
        # keypoints from the face box: for new faces, and for every found face of a whole-frame model
        boxed = [j for _, j in refreshed] + fresh
        points = self.detector.keypoints([frame] * len(boxed), [found[j] for j in boxed])
        for (track, _), p in zip(refreshed, points):
            track.move(p)
        for j, p in zip(fresh, points[len(refreshed):]):
            if self.followable and not _inside(p, frame.shape):
                continue  # a face at the edge whose keypoints have left the frame: following it would end it at once
            centre, side = square(p)
            x, y, w, h = found[j].box
            box = np.array([(x + w / 2 - centre[0]) / side, (y + h / 2 - centre[1]) / side, w / side, h / side])
            kept.append(Track(self.next_id, p, box, found[j].score))
            self.next_id += 1
        self.tracks = kept

    def _drop_duplicates(self) -> None:
        """Two tracks that followed one face onto the same place: the older one stays."""
        kept: list[Track] = []
        for track in sorted(self.tracks, key=lambda tr: tr.id):
            if all(iou(square(track.points), square(other.points)) < self.match_iou for other in kept):
                kept.append(track)
        self.tracks = kept

    def _faces(self, frame: np.ndarray, t: float) -> list[Face]:
        if not self.tracks:
            if self.smooth:
                self.smooth.keep([])
            return []
        points = np.stack([tr.points for tr in self.tracks])
        sides = np.array([square(p)[1] for p in points])
        if self.smooth:
            ids = [tr.id for tr in self.tracks]
            self.smooth.keep(ids)
            points = self.smooth(points, t, ids, sides)
        order = sorted(zip(self.tracks, points), key=lambda pair: pair[0].id)
        boxes = []
        for track, p in order:
            centre, side = square(p)
            dx, dy, w, h = track.box * side
            x0, y0 = max(0, round(centre[0] + dx - w / 2)), max(0, round(centre[1] + dy - h / 2))
            x1 = min(frame.shape[1], round(centre[0] + dx + w / 2))
            y1 = min(frame.shape[0], round(centre[1] + dy + h / 2))
            boxes.append((x0, y0, max(0, x1 - x0), max(0, y1 - y0)))  # inside the frame, as the face stage's boxes are
        return Face.fitted(boxes, [tr.score for tr, _ in order], [p for _, p in order], [tr.id for tr, _ in order])


def _inside(points: np.ndarray, shape: tuple) -> bool:
    """Whether a followed face is still there: finite keypoints, at least half of them inside the frame."""
    if not np.isfinite(points).all() or square(points)[1] < 2:
        return False
    height, width = shape[:2]
    inside = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    return inside.mean() >= 0.5
