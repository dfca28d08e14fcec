"""Show drgn objects as a C debugger does, evaluate C expressions, note values read from left-out pages."""
