"""Export for inference: `seqlab export` writes TorchScript or ONNX (`export.py`), the graphs are
each task's model behind fixed tensor signatures (`graphs.py`), and `runtime.py` runs an exported
file behind the tasks' own predict commands."""
