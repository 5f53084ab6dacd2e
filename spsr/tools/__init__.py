"""Maintainer tools: making the sample photos and training the bundled models."""
