"""Checks of the build and release artefacts (Dockerfiles, CI workflows) that run offline."""
