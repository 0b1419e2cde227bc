/**
 * Stage: xds. Headers that authorization inspects reach it, and the application, as one value: the first. Envoy's
 * RBAC matches a header sent twice when either value matches, so `x-team: blue` + `x-team: red` would pass an ALLOW
 * for blue while the application reads red (or "blue, red"). Envoy's header mutation filter, first in the chain,
 * overwrites each such header with its first value (`%REQ(name)%`), so every later filter and the application see
 * the same single value.
 */
import { inspectedHeaders } from '../../ir/authz.js';
import { anyType } from '../type-urls.js';
import type { HttpFilterPlugin } from './index.js';

export const HEADER_MUTATION_FILTER = 'envoy.filters.http.header_mutation';

export const singleValueHeadersFilter: HttpFilterPlugin = {
  name: HEADER_MUTATION_FILTER,
  build(l) {
    if (!l.security || !l.http) return undefined;
    const names = inspectedHeaders(l.security.policies.flatMap((p) => p.rules));
    if (names.length === 0) return undefined;
    const request_mutations = names.map((name) => ({
      append: { header: { key: name, value: `%REQ(${name})%` }, append_action: 'OVERWRITE_IF_EXISTS' },
    }));
    return {
      name: HEADER_MUTATION_FILTER,
      typed_config: {
        '@type': anyType('envoy.extensions.filters.http.header_mutation.v3.HeaderMutation'),
        mutations: { request_mutations },
      },
    };
  },
};
