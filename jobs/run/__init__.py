"""What runs on the Ray cluster: the driver entrypoint, train and tune, the one training loop, attention
records, the run layout and storage, the readers of a run's files and the checks of a spec against data."""
