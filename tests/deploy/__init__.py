"""Offline checks of the deployment files: Compose, Kubernetes, the Containerfile, CI workflows."""
