"""The landing zone: files arrive, the watcher announces each new content hash exactly once."""
