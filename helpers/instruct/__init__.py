"""Route B, instruction-tuning a pretrained model: the offline model registry and loader, the instruction
data and chat templates, prompt masking and packing, LoRA and adapters, and the scorers that turn generated
text into accuracies. Stands on `core` and `measure`; never imports `scratch`, `deploy`, `experiment` or `course`.
"""
