"""Use cases. Each takes a session and collaborators as arguments, never commits on its own (the caller
owns the transaction), and raises domain errors."""
