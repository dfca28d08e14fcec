"""Kernel stacks: the one stack service every view reads (:mod:`.service`), unwinding a task into the
rows a Call Stack shows (:mod:`.frames`), stack signatures (:mod:`.signature`), the normalisation
(:mod:`.normalize`), groups of tasks with one stack (:mod:`.groups`) and a frame's scopes (:mod:`.scopes`)."""
