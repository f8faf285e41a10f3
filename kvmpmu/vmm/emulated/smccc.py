"""HVC (and SMC) calls from EL1 as KVM answers them: the SMC Calling Convention, function ID in
W0, result in X0. PSCI SYSTEM_OFF and SYSTEM_RESET end the VM (kvmtool stops on both); every
other function returns NOT_SUPPORTED here (KVM would answer PSCI_VERSION, FEATURES, CPU_ON...)."""

from __future__ import annotations

PSCI_SYSTEM_OFF = 0x84000008
PSCI_SYSTEM_RESET = 0x84000009
NOT_SUPPORTED = 2**64 - 1  # SMCCC_RET_NOT_SUPPORTED, -1
# kvm_run.system_event.type
KVM_SYSTEM_EVENT_SHUTDOWN, KVM_SYSTEM_EVENT_RESET = 1, 2
SYSTEM_EVENTS = {PSCI_SYSTEM_OFF: KVM_SYSTEM_EVENT_SHUTDOWN,
                 PSCI_SYSTEM_RESET: KVM_SYSTEM_EVENT_RESET}


def system_event(imm: int, x0: int) -> int | None:
    """The KVM system event a call makes, or None: it returns NOT_SUPPORTED. A non-zero
    immediate is reserved by SMCCC: NOT_SUPPORTED too."""
    return SYSTEM_EVENTS.get(x0 & 0xFFFFFFFF) if imm == 0 else None
