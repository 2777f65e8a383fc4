/** notrack-management: exempt management SSH (source -> the sshd port, and the replies) from tracking. */
import { managementRules } from '../../core/notrack.js';
import { notrackModule } from './notrack.js';

export const notrackManagementStep = notrackModule({
  kind: 'notrack-management',
  rules: (step) => ({ backend: step.params.backend, rules: managementRules(step.params) }),
  describe: (step) => ({ text: 'Exempt management SSH from tracking (NOTRACK)', description: step.id }),
});
