"""Node access over SSH: the WireGuard mesh and latency checks on real (or local) hosts."""
