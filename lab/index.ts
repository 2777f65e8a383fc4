/**
 * The network-namespace lab: real NAT gateways on this machine, for tests and the demo.
 * See lab.ts (topology, up/down), scenarios.ts (fills), ssh.ts (sshd + mount namespace).
 */
export {
  labUp,
  labDown,
  labDownAll,
  listLabs,
  openLab,
  toLab,
  gatewayExec,
  conntrackCount,
  conntrackMax,
  conntrackStats,
  parseConntrackStats,
  flushTable,
  deleteUnassured,
  tableFullLines,
  sshExec,
  openGatewayMaster,
  startKeepalive,
  labUpOptionsSchema,
  IFACES,
  type Lab,
  type LabUpOptions,
  type LabDownResult,
  type LabListing,
} from './lab.js';
export {
  fillScenario,
  fillToPercent,
  stopHold,
  labTableSummary,
  fillOptionsSchema,
  scenarioSchema,
  SCENARIOS,
  type ScenarioName,
  type FillOptions,
  type FillResult,
  type FillPhase,
  type LabTableSummary,
} from './scenarios.js';
export { ipv6Flows, conntrackCountByFamily, ipv6FlowsSchema, type Ipv6FlowsOptions, type Ipv6FlowsResult } from './ipv6-flows.js';
export { hiddenToolSchema, notFoundLogPath, type HiddenTool } from './hidden-tools.js';
export { type SshMaster, type SshTarget, sshOptions, fingerprintOf } from './ssh.js';
export { type Keepalive, type KeepaliveOptions, ensureCtgen } from './traffic.js';
export { type LabState, stateRoot } from './state.js';
export { LAB_PREFIX, normalizeLabName, planAddresses } from './naming.js';
export { HOST_NETNS, LabCommandError } from './exec.js';
