"""kserve_push: proves a model serves on KServe's model server, then deploys it (train image)."""
