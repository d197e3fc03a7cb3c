"""The test suite: unit/ mirrors pipelines/, then integration/, tooling/, support/."""
