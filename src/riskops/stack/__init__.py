"""The local stack that `riskops up` starts: Prefect and MLflow servers, a worker, the watcher."""
