"""Files and directories: crash-safe outputs, checksums, strict JSON, locks between runs, versions."""
