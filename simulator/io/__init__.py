"""What semsim writes and reads: atomic files, trained artifacts, results tables, per-example outcomes, reports."""
