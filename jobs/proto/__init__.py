"""Generated gRPC stubs of the Foveate API (see jobs/proto/codegen.py)."""
