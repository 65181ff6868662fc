"""What comes in from the user: importers (the int8 model JSON of the real models,
ONNX float and QDQ int8, torch.fx), model lookup by name or path (``models``), photos as
model input (``images``) and labelled datasets for planning and calibration
(``datasets``: mnist, digits, folder:, npz:). May import: ``ir``, ``quantize``.
"""
