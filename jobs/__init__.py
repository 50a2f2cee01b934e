"""Foveate jobs: the data layer, the job spec, the training loop and tune driver, the gRPC job service."""
