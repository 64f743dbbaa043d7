"""`make bench`: measurements on this machine, reported as medians of repeated runs."""
