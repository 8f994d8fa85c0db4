"""`dnabox init`: a fleet repository the operator owns, next to their CI (see scaffold.repo)."""
