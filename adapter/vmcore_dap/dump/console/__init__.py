"""The Debug Console: crash-compatible commands (drgn's and ours), completions, and the drgn Python REPL."""
