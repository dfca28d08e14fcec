"""Disassembly of dump memory with capstone, and source-interleaved listings."""
