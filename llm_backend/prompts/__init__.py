"""Prompt templates for causal and masked LMs: rendering, few-shot demonstrations, verbalizer scoring, generation."""
