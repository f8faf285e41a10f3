"""The real kernel through /dev/kvm (fds.py), what `struct kvm_run` says after KVM_RUN
(run.py), and the host's PMUs as sysfs describes them (sysfs.py)."""
