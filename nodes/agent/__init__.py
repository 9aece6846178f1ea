"""The node agent: runs on each GPU node, registers it, heartbeats, reconciles desired state."""
