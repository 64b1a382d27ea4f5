"""The reconciliation loop: make each target match its grant rows, expire what is due, sync inventory."""
