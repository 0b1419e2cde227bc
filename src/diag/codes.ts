/**
 * The catalog of diagnostic codes. Codes are stable: tests, CI annotations and users' suppressions rely on them.
 * Ranges: CH01xx source and YAML, CH02xx document shape and fields, CH03xx references, CH04xx conflicts,
 * CH05xx advice.
 */
import type { Severity } from './diagnostic.js';

export const CODES = {
  CH0101: { severity: 'error', title: 'cannot read policy source' },
  CH0102: { severity: 'error', title: 'YAML syntax error' },
  CH0103: { severity: 'error', title: 'file too large' },
  CH0104: { severity: 'error', title: 'too many documents or files' },
  CH0105: { severity: 'error', title: 'symlink leads outside the policy root' },
  CH0106: { severity: 'error', title: 'file changed while the tree was read' },
  CH0201: { severity: 'error', title: 'unknown field' },
  CH0202: { severity: 'error', title: 'wrong type' },
  CH0203: { severity: 'error', title: 'missing required field' },
  CH0204: { severity: 'error', title: 'invalid value' },
  CH0205: { severity: 'error', title: 'unsupported field' },
  CH0206: { severity: 'error', title: 'unknown kind or apiVersion' },
  CH0207: { severity: 'error', title: 'kind not supported yet' },
  CH0208: { severity: 'error', title: 'document is not a mapping' },
  CH0301: { severity: 'error', title: 'reference to an unknown service' },
  CH0302: { severity: 'error', title: 'reference to an unknown namespace' },
  CH0303: { severity: 'warning', title: 'selector matches no workload' },
  CH0304: { severity: 'error', title: 'reference to an unknown port' },
  CH0305: { severity: 'error', title: 'reference to an unknown extension provider' },
  CH0401: { severity: 'error', title: 'duplicate object name' },
  CH0402: { severity: 'error', title: 'duplicate service host' },
  CH0403: { severity: 'error', title: 'conflicting selection' },
  CH0404: { severity: 'error', title: 'listener address conflict' },
  CH0405: { severity: 'error', title: 'more than one Mesh' },
  CH0406: { severity: 'error', title: 'route weights do not add up to 100' },
  CH0407: { severity: 'warning', title: 'route can never match' },
  CH0408: { severity: 'error', title: 'conflicting VirtualServices or DestinationRules for a host' },
  CH0409: { severity: 'error', title: 'identity reserved for the control plane' },
  CH0306: { severity: 'error', title: 'reference to an unknown subset' },
  CH0307: { severity: 'error', title: 'reference to an unknown gateway' },
  CH0308: { severity: 'error', title: 'TLS credential missing or invalid' },
  CH0501: { severity: 'info', title: 'advice' },
} as const satisfies Record<string, { severity: Severity; title: string }>;

export type DiagnosticCode = keyof typeof CODES;
