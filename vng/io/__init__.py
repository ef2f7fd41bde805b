"""Readers and writers of every release format (FORMATS.md), video decoding and mask files."""
