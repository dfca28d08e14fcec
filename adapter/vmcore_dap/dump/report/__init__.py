"""The first screen of a crash (sys, panic, CPUs) and the Markdown crash report."""
