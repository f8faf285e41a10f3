"""What runs inside the guest: standard library only, Python 3.11."""
