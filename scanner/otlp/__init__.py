"""OTLP/HTTP receiver and redacting forwarder behind ``vecleak serve --otlp``."""
