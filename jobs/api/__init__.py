"""What a client of Foveate needs and nothing else: the typed spec, its proto conversion, job states and
kinds, path rules, and the gRPC client. Imports only `jobs.proto` (checked by import-linter)."""
