"""Datasets: the course's PNG layout, CASIA .gnt files, the decoded-array cache."""
