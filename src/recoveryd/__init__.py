"""recoveryd: disaster-recovery and backup orchestration for the databases of public services."""

__version__ = "0.1.0"
