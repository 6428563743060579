"""What a deploy job runs after the build: the rollout, its smoke tests and bakes, and the analysis."""
