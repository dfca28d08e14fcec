"""Show drgn objects as a C debugger does, evaluate C expressions, and the scopes of a frame."""
