"""Server-free tests, one folder per package of pipelines/."""
