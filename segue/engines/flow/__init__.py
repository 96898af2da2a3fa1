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
3. Subjects (``subjects``, ``layers``): regions the camera does not explain and the dense flow
   fails to carry are searched for in the other frame as wholes (masked template search both
   ways, then an ECC fit of size and turn) and, when a rigid move explains them far better
   than the flow does, carried as layers: each end frame gets a *plate* with its subjects
   replaced by the background the other frame shows there (the flows there become the
   camera's), and at time t each subject is drawn once, with soft edges, on a straight path
   at constant speed, over the background made from the plates. Anything else is left to the
   flow, which on real footage follows deforming things better than a rigid layer.
4. Per key time (a few evenly spaced t, at the map size): the flows from t back to each end,
   by forward splatting the pair's flows; and a visibility weight checked in the target
   frame's coordinates, zero for an end whose sample falls outside its frame (``warp``).
   Other times interpolate the two neighbouring keys.
5. Per output frame (the cheap part, ``warp.Warper``): sampling maps doubled back with
   ``cv2.pyrUp`` band by band, and two fixed-point ``cv2.remap`` calls from Lanczos-doubled
   end frames (or plates), blended by time, and by visibility in the tiles where that
   differs; then the subjects drawn over it (``layers.Layers.draw``, two small warps each).
   Frames are made ahead in worker threads while the caller encodes (``parallel``).

When neither flow nor camera can be trusted (unrelated frames, huge changes) the engine falls
back to a cross-dissolve along the camera path (or a plain one), which never tears the frame.
"""

from segue.engines.flow.camera import estimate_camera
from segue.engines.flow.engine import PRESETS, FlowEngine, Preset, interpolate, iter_interpolate

__all__ = ["PRESETS", "FlowEngine", "Preset", "estimate_camera", "interpolate",
           "iter_interpolate"]
