"""Map DWARF file names to files on this machine (sourceRoot, sourceFileMap, distribution layouts)."""
