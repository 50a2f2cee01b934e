"""The job service: the queue and dispatcher (JobService), the SQLite catalog, the gRPC server and
`foveate serve`. Never trains: what runs on the cluster is `jobs.run`."""
