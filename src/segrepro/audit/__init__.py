"""The audit stage: results against pinned values, and edits after a stage ran."""
