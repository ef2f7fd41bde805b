"""Language: spaCy noun parsing, character ↔ token spans."""
