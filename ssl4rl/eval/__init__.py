"""Evaluation: multiple-choice benchmarks (VLMEvalKit TSVs and Hugging Face formats) and
puzzle accuracy with the training verifiers; predictions, summaries and reports."""
