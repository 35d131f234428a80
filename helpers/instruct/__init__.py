"""Route B, instruction-tuning a pretrained model: the offline model registry and loader (`models`), the
instruction data (`instructions`), chat templates (`templates`), prompt masking and the response-only loss
(`masking`), packing and padding (`packing`), LoRA, adapters and the tuning recipe (`lora`), and the scorers
that turn generated text into accuracies (`scoring`). Stands on `core` and `measure`; never imports
`scratch`, `deploy`, `experiment` or `course`.
"""
