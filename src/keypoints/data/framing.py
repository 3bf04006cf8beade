"""Face framing lives in the inference wing (keypoints.inference.framing), which training shares: the
frame a model is trained on is the frame the detector cuts. This name stays for configs and checkpoints
that say `keypoints.data.framing.FaceFrame`."""

from keypoints.inference.framing import FaceFrame, keypoint_box

__all__ = ["FaceFrame", "keypoint_box"]
