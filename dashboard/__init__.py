"""The Streamlit dashboard; it talks only to the gRPC job service."""
