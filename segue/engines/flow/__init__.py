"""The ``flow`` engine: classical optical-flow in-betweening on the CPU, no model weights.

How one video is made (all the heavy work happens once, on the pair):

1. Camera (``camera``): ORB features matched between the two frames and a RANSAC homography,
   refined photometrically on the whole frame (ECC). It is used only when enough matches
   agree (and never with ``camera_fixed``); it pre-aligns the pair so that dense flow only
   has to find what the camera did not explain, and residual flow is kept only where the
   camera alone does not explain the pixel.
2. Dense flow both ways with OpenCV DIS at a working size (``engine``); the homography is
   folded back in, so the flows are total. Objects that move farther than about their size
   are lost by DIS: the regions its flow does not explain are found again by template
   matching (``motion``).
3. Per key time (a few evenly spaced t, at the map size): the flows from t back to each end,
   by forward splatting the pair's flows; and a visibility weight checked in the target
   frame's coordinates, zero for an end whose sample falls outside its frame (``warp``).
   Other times interpolate the two neighbouring keys.
4. Per output frame (the cheap part, ``warp.Warper``): sampling maps doubled back with
   ``cv2.pyrUp`` band by band, and two fixed-point ``cv2.remap`` calls from Lanczos-doubled
   end frames, blended by time, and by visibility in the tiles where that differs. Frames
   are made ahead in worker threads while the caller encodes (``parallel``).

When neither flow nor camera can be trusted (unrelated frames, huge changes) the engine falls
back to a cross-dissolve along the camera path (or a plain one), which never tears the frame.
"""

from segue.engines.flow.camera import estimate_camera
from segue.engines.flow.engine import PRESETS, FlowEngine, Preset, interpolate, iter_interpolate

__all__ = ["PRESETS", "FlowEngine", "Preset", "estimate_camera", "interpolate",
           "iter_interpolate"]
