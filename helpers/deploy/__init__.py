"""Running a model locally: privacy before training (PII redaction), the canary memorisation test, the
chat session with streaming and a stop button, and the notebook widgets. Stands on `measure` and `core`.
"""
