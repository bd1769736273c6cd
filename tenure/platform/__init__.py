"""Running the whole platform on one machine: ``tenure up`` and ``tenure status``."""
