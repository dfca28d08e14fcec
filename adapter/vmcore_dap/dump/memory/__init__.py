"""Read dump memory: readable prefixes, why a page is missing, the symbol at an address."""
