"""masqctl: troubleshoot and fix IP masquerading (SNAT of pod traffic) on Kubernetes nodes."""

__version__ = "0.1.0.dev0"
