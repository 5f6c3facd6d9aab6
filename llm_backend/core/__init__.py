"""Process-wide plumbing every job shares: settings, errors shown the same way by pages and CLI, progress callbacks, safe paths, device choice, workshop limits."""
