"""SVG (Denton and Fergus 2018) on action-conditioned robot-pushing video, 64 x 64.

`config` (sizes and presets), `model` (`SVG`), its layers (`vgg`, `recurrent`, `hierarchy`),
`export` (the exported graphs), `onnx_files` (inference from files) and `task` (the
task contract, `BairTask`). Its data, BAIR-layout video, is `keras_cvae.data`.
"""
