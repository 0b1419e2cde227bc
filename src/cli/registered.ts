/**
 * For offline commands (render, graph, explain): the instances a control plane registered into WorkloadGroups, as
 * kept in its state directory, so those commands show registered workloads like committed ones.
 */
import { readRegistrations } from '../app/registrations.js';
import type { RegisteredInstance } from '../model/groups.js';

export function registeredInstances(stateDir: string): RegisteredInstance[] {
  return readRegistrations(stateDir).map(({ id, group, address }) => ({ id, group, address }));
}
