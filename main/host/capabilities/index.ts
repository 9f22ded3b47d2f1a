// Domain capabilities (virsh domcapabilities) of the local engines, and the check of one device against them.
export { checkDevice, choiceProblem, inputKey } from './check.js';
export { engineCapabilities, probeQemuDevices, qemuCapabilities, v86Capabilities, type EngineCapabilityOptions, type LocalEngine } from './engines.js';
