"""The embedded sandbox: emulated cloud APIs on loopback whose VMs boot as network-namespace
hosts on this machine. Product code reaches it only through the SDKs' endpoint settings."""
