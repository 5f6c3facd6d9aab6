"""Few-shot training: heads, SetFit, full/LoRA fine-tuning, distillation, background runs, saved models."""
