/**
 * QEMU VM gateway for tests that need a whole kernel (nf_conntrack_max and hashsize
 * writable). See README.md beside this file.
 */
export {
  vmUp,
  vmAttach,
  vmDown,
  vmList,
  VM_ADDRESSES,
  type VmGateway,
  type VmUpOptions,
  type VmState,
  type FillScenario,
  type FillResult,
  type ExecOptions,
  type ExecResult,
} from './gateway.js';
export { ensureKernel, ensureInitramfs, BUSYBOX_LAB_CONNTRACK, type KernelInfo, type InitramfsInfo, type VmUserland } from './initramfs.js';
export { registerVmCommands, describeVmFill, writeVmInventory } from './cli.js';
