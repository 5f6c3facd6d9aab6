"""Token-level task: named-entity data, token-classifier training, tagging and entity-level evaluation."""
