"""Token-level task: named-entity data, token-classifier training, tagging and entity-level evaluation."""

#: Training methods of ``ner-train`` / the page; here (not in train.py) so the CLI's parser needs no torch import.
METHODS = {"full": "Fine-tune every weight of the encoder", "lora": "LoRA adapters (peft) on the encoder's attention"}
