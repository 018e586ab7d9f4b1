"""Study orchestration: storage, samplers, pruners, the trial runner and the study loop."""
