"""The pose-conditioned CVAE of the course's later lab: 32 x 64 dance video from the first
frame and one pose-label image per frame, rolled out over 630-frame videos.

`config` (sizes and presets), `model` (`PoseCVAE`), `layers`, its data (`dancer`,
`embedded`, `layout`, `pipeline`), `export` (the exported graphs), `onnx_files` (inference
from files) and `task` (the task contract, `PoseTask`).
"""
