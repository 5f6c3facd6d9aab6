"""Why a label: word attributions for any scorer, and attention views for transformer models."""
