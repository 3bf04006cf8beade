"""Teachers that label unlabelled photos for training (scripts/pseudo_label.py, conf/pseudo_label.yaml):
tddfa.py (3DDFA_V2, a 3D-fitted face: large poses), others.py (MediaPipe's mesh, this project's own
model, dlib), labels.py (their points mapped onto our markup, per-point confidence, combined point by
point, the CSV), workflow.py (a folder in, a CSV out). A tool above the inference core: inference never
imports it."""

from keypoints.core.checks import BOOLEAN, one_of, optional, whole

RULES = {  # conf/pseudo_label.yaml
    "limit": optional(whole(1)),
    "check_limit": optional(whole(1)),
    "check_skip": whole(0),
    "combine": one_of("most_confident", "weighted_mean"),  # keypoints.teachers.labels.COMBINE
    "overwrite": BOOLEAN,
    "calibration.photos": whole(1),
}
