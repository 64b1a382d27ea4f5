"""The life of a grant: ending, revoking, extending, re-evaluating, the worker's target work, secrets."""
