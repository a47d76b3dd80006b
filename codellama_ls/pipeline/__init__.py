"""A request into suggestions: the completion pipeline, its scheduler, answer caches and acceptance counts."""
