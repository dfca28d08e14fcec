"""Map DWARF file names to files on this machine (sourceRoot, sourceFileMap, distribution layouts),
and where to show a code address (:mod:`.code_location`)."""
