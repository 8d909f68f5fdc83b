"""Evaluation: scoring answers against gold sets, reports, calibration and fitting."""
