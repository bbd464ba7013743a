"""The build farm: one build's stages spread over several engines (workers), with a
registry carrying each stage's image from the worker that built it to the next."""
