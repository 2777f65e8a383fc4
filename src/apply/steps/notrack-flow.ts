/** notrack-flow: exempt a heavy flow that is not NATed (both directions) from tracking. */
import { flowRules } from '../../core/notrack.js';
import { notrackModule } from './notrack.js';

export const notrackFlowStep = notrackModule({
  kind: 'notrack-flow',
  rules: (step) => ({ backend: step.params.backend, rules: flowRules(step.params) }),
  describe: (step) => ({ text: `NOTRACK ${step.key}`, description: step.id }),
});
